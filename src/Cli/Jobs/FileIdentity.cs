using System.Runtime.InteropServices;

namespace ActorQueue.Cli.Jobs;

/// <summary>
/// Which file a path or descriptor is, by device and inode: two names (a symbolic or hard link, a relative and an absolute
/// path, stdin redirected from a file) are the same file exactly when these match.
/// </summary>
internal static class FileIdentity
{
    /// <summary>The (device, inode) of what <paramref name="path"/> names, following links; <c>null</c> if it does not exist.</summary>
    public static (ulong Device, ulong Inode)? Of(string path)
    {
        // st_dev and st_ino are the first two 64-bit fields of struct stat on every 64-bit Linux (x86-64 and the generic
        // layout of arm64 alike); the buffer is larger than any struct stat.
        var buffer = new byte[512];
        return Stat(path, buffer) == 0 ? (BitConverter.ToUInt64(buffer, 0), BitConverter.ToUInt64(buffer, 8)) : null;
    }

    /// <summary>
    /// The file or pipe on standard input (through <c>/proc/self/fd/0</c>, which stat follows to it); <c>null</c> for a
    /// device (a terminal, <c>/dev/null</c>), which a log may well share without harm. A pipe, FIFO or socket counts:
    /// a joblog written to the pipe the jobs come from would feed its records back in as jobs, for ever.
    /// </summary>
    public static (ulong Device, ulong Inode)? OfStandardInput() =>
        StandardInputTarget() is { } target && !target.StartsWith("/dev/", StringComparison.Ordinal) ? Of(StandardInput) : null;

    /// <summary>Whether standard input is a file with a name (not a pipe, a socket or a device).</summary>
    public static bool StandardInputIsNamedFile() =>
        StandardInputTarget() is { } target && target.StartsWith('/') && !target.StartsWith("/dev/", StringComparison.Ordinal);

    private const string StandardInput = "/proc/self/fd/0";

    /// <summary>What fd 0 is: a path, or <c>pipe:[N]</c>, <c>socket:[N]</c>...; <c>null</c> when it is closed.</summary>
    private static string? StandardInputTarget()
    {
        try
        {
            return new FileInfo(StandardInput).LinkTarget;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Whether <paramref name="a"/> and <paramref name="b"/> name one existing file.</summary>
    public static bool Same(string a, string b) => Of(a) is { } first && Of(b) == first;

    [DllImport("libc", EntryPoint = "stat", SetLastError = true)]
    private static extern int Stat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, [Out] byte[] buffer);
}
