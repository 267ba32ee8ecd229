using System.Runtime.InteropServices;
using ActorQueue.Actors;

namespace ActorQueue.Cli.Jobs;

/// <summary>
/// Which file a path or descriptor is, by device and inode: two names (a symbolic or hard link, a relative and an absolute
/// path, stdin redirected from a file) are the same file exactly when these match. stat itself is the library's
/// (<see cref="UnixFileIdentity"/>), whose queue lock checks the same identity.
/// </summary>
internal static class FileIdentity
{
    /// <summary>The (device, inode) of what <paramref name="path"/> names, following links; <c>null</c> if it does not exist.</summary>
    public static (ulong Device, ulong Inode)? Of(string path) => UnixFileIdentity.Of(path);

    /// <summary>
    /// The file or pipe on standard input (through <c>/proc/self/fd/0</c>, which stat follows to it), by what stat says
    /// it is, not by its name (<c>/dev/shm</c> holds plain files); <c>null</c> for a device (a terminal, <c>/dev/null</c>)
    /// or a socket, which a log may share without harm (what is written to a socket goes to its peer). A pipe or FIFO
    /// counts: a joblog written to the pipe the jobs come from would feed its records back in as jobs, for ever.
    /// </summary>
    /// <param name="isPipe">Whether it is a pipe or FIFO (what a log written to it would come back through as input).</param>
    public static (ulong Device, ulong Inode)? OfStandardInput(out bool isPipe) => OfDescriptor("/proc/self/fd/0", out isPipe);

    /// <summary>
    /// The file or pipe on standard output, as <see cref="OfStandardInput"/> tells it (<c>null</c> for a terminal,
    /// <c>/dev/null</c> or a socket): a joblog or log opened there again (<c>/dev/stdout</c> onto a file) would truncate
    /// the jobs' output and write at an offset of its own, the two overwriting each other.
    /// </summary>
    public static (ulong Device, ulong Inode)? OfStandardOutput() => OfDescriptor("/proc/self/fd/1", out _);

    /// <summary>
    /// The regular file on standard error: the jobs' errors and this command's log go there, and a joblog or log opened
    /// there again would truncate them and write at an offset of its own. <c>null</c> for a pipe too (unlike
    /// <see cref="OfStandardOutput"/>): what is written to a pipe only interleaves with the log, and <c>--log /dev/stderr</c>
    /// into a container's or CI's log pipe is a common setup (re-read: refusing pipes refused the advice of the
    /// <c>--joblog -</c> error itself).
    /// </summary>
    public static (ulong Device, ulong Inode)? OfStandardError()
    {
        var file = OfDescriptor("/proc/self/fd/2", out var isPipe);
        return isPipe ? null : file;
    }

    /// <summary>
    /// Whether standard input was closed when this process started (<c>run - &lt;&amp;-</c>). Then fd 0 is no input at
    /// all but the first descriptor the runtime opened for itself (a pipe of its own, which never ends), and that one
    /// is close-on-exec, which an inherited standard input never is (exec would have closed it).
    /// </summary>
    public static bool StandardInputClosed()
    {
        const int GetDescriptorFlags = 1; // F_GETFD
        const int CloseOnExec = 1; // FD_CLOEXEC
        var flags = Fcntl(0, GetDescriptorFlags);
        return flags < 0 || (flags & CloseOnExec) != 0;
    }

    /// <summary>What <see cref="OfStandardInput"/> says, for the descriptor <paramref name="link"/> (<c>/proc/self/fd/N</c>) names.</summary>
    private static (ulong Device, ulong Inode)? OfDescriptor(string link, out bool isPipe)
    {
        var found = UnixFileIdentity.Stat(link, out var identity, out var type);
        isPipe = found && type == UnixFileType.Fifo;
        return !found || type is UnixFileType.CharacterDevice or UnixFileType.BlockDevice or UnixFileType.Socket or null ? null : identity;
    }

    /// <summary>
    /// Whether <paramref name="path"/> names (following links) a regular file, the only kind that can be read twice:
    /// once to count its jobs, once to run them. A pipe, FIFO or device read a second time would hand the jobs to the
    /// counter (<c>/dev/stdin</c> on a pipe is a link whose own length is no guide). <c>null</c> when it cannot be told:
    /// no such file, or a struct stat layout not known here.
    /// </summary>
    public static bool? IsRegularFile(string path) =>
        UnixFileIdentity.Stat(path, out _, out var type) && type is { } known ? known == UnixFileType.Regular : null;

    /// <summary>The (device, inode) of the file <paramref name="file"/> has open (through <c>/proc/self/fd</c>, whatever its name says now).</summary>
    public static (ulong Device, ulong Inode)? Of(FileStream file) => UnixFileIdentity.Of(file);

    /// <summary>The errno of an open that found the file already there (EEXIST), or Windows' ERROR_FILE_EXISTS.</summary>
    private static bool AlreadyExists(IOException error) => error.HResult is 17 or unchecked((int)0x80070050);

    /// <summary>
    /// Opens <paramref name="path"/>, telling whether this open created it: <see cref="FileMode.CreateNew"/> first (the
    /// creation: what it makes is this process's, by the identity of the handle it opened), and only when something is
    /// there already (a file, a FIFO, a device, a symbolic link, dangling or not) <paramref name="mode"/>, which makes
    /// the file not this process's. A file that existed is never taken for made, whoever made it meanwhile.
    /// </summary>
    /// <returns>The open file, and its identity when this open created it (else <c>null</c>).</returns>
    public static (FileStream File, (ulong Device, ulong Inode)? Made) OpenCreating(string path, FileMode mode, FileAccess access, FileShare share, int bufferSize = 4096)
    {
        try
        {
            var made = new FileStream(path, FileMode.CreateNew, access, share, bufferSize);
            return (made, Of(made));
        }
        catch (IOException error) when (AlreadyExists(error))
        {
            return (new FileStream(path, mode, access, share, bufferSize), null);
        }
    }

    /// <summary>
    /// Creates <paramref name="path"/> empty unless something is there (a file, or a symbolic link, dangling or not);
    /// the identity of the file this call made, or <c>null</c> when it made none.
    /// </summary>
    public static (ulong Device, ulong Inode)? CreateIfMissing(string path)
    {
        try
        {
            using var made = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.ReadWrite);
            return Of(made);
        }
        catch (IOException error) when (AlreadyExists(error))
        {
            return null;
        }
    }

    /// <summary>Whether <paramref name="path"/> still names the regular file <paramref name="identity"/> (not following a last symbolic link).</summary>
    public static bool Names(string path, (ulong Device, ulong Inode) identity) => UnixFileIdentity.Names(path, identity);

    /// <summary>
    /// Removes the file <paramref name="identity"/> at <paramref name="path"/> only while nobody else holds it: it is
    /// opened with <see cref="FileShare.None"/> first (an exclusive <c>flock</c>, which fails at once while any other open
    /// holds a lock on it: another run's joblog, another process's <c>--log</c>, a durable queue's name lock, since .NET
    /// locks every file it opens), and deleted while held, only while the path still names that file and
    /// <paramref name="when"/> (given the held file) agrees. Whatever fails leaves the file as it is.
    /// </summary>
    /// <returns>Whether the file was removed.</returns>
    public static bool RemoveUnheld(string path, (ulong Device, ulong Inode) identity, Func<FileStream, bool>? when = null)
    {
        try
        {
            if (!Names(path, identity))
            {
                return false; // and never opened: a FIFO put there would hold the open until a writer came
            }

            using var held = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None, bufferSize: 1);
            if (Of(held) == identity && Names(path, identity) && (when is null || when(held)))
            {
                File.Delete(path);
                return true;
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Held by another, gone or replaced: not this run's to remove.
        }

        return false;
    }

    /// <summary>
    /// Whether two paths, existing or not, name one file: the same existing file, or the same name in one existing
    /// directory (reached through a symbolic link or not): <c>d/s.db</c> and <c>e/s.db</c> with <c>e</c> a link to <c>d</c>.
    /// </summary>
    public static bool SameName(string a, string b)
    {
        var (first, second) = (Path.GetFullPath(a).TrimEnd('/'), Path.GetFullPath(b).TrimEnd('/'));
        return string.Equals(first, second, StringComparison.Ordinal) || Same(first, second)
            || (string.Equals(Path.GetFileName(first), Path.GetFileName(second), StringComparison.Ordinal)
                && Path.GetDirectoryName(first) is { } firstParent && Path.GetDirectoryName(second) is { } secondParent
                && Same(firstParent, secondParent));
    }

    /// <summary>Whether <paramref name="a"/> and <paramref name="b"/> name one existing file.</summary>
    public static bool Same(string a, string b) => Of(a) is { } first && Of(b) == first;

    // fcntl is variadic; F_GETFD takes no third argument, and a two-int call is the same on x86-64 and arm64 Linux.
    [DllImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static extern int Fcntl(int descriptor, int command);
}
