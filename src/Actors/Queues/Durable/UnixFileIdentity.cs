using System.Runtime.InteropServices;

namespace ActorQueue.Actors;

/// <summary>
/// Which file a path or an open file is, by device and inode (Linux's struct stat; nothing on Windows): two names (a
/// symbolic or hard link, a relative and an absolute path) are the same file exactly when these match. A lock taken on
/// an open file locks the file its path names only while the path still names that file (<see cref="QueueFileLock"/>,
/// and the command line's own lock files and outputs, check it).
/// </summary>
internal static class UnixFileIdentity
{
    /// <summary>The (device, inode) of what <paramref name="path"/> names, following links; <c>null</c> if it does not exist (or on Windows).</summary>
    public static (ulong Device, ulong Inode)? Of(string path) => Stat(path, out var identity, out _) ? identity : null;

    /// <summary>The (device, inode) of the file <paramref name="file"/> has open (through <c>/proc/self/fd</c>, whatever its name says now); <c>null</c> if it cannot be told.</summary>
    public static (ulong Device, ulong Inode)? Of(FileStream file) => Of($"/proc/self/fd/{file.SafeFileHandle.DangerousGetHandle()}");

    /// <summary>Whether <paramref name="path"/> still names the regular file <paramref name="identity"/> (not following a last symbolic link).</summary>
    public static bool Names(string path, (ulong Device, ulong Inode) identity) =>
        Stat(path, out var named, out var type, followLinks: false) && type == UnixFileType.Regular && named == identity;

    /// <summary>
    /// Whether <paramref name="path"/> still names (following links) the file <paramref name="held"/> has open: a lock taken
    /// on it is the lock of that name. <c>true</c> where it cannot be told (no <c>/proc</c>: not Linux).
    /// </summary>
    public static bool StillNamed(string path, FileStream held) => Of(held) is not { } identity || Of(path) == identity;

    /// <summary>
    /// stat (or lstat) of <paramref name="path"/>: its identity, and its type when the layout of this architecture's
    /// struct stat is known here. <c>false</c> when it does not exist, or on Windows (no libc).
    /// </summary>
    /// <remarks>
    /// st_dev and st_ino are the first two 64-bit fields of struct stat on every 64-bit Linux (x86-64 and the generic
    /// layout of arm64 alike); the buffer is larger than any struct stat.
    /// </remarks>
    public static bool Stat(string path, out (ulong Device, ulong Inode) identity, out UnixFileType? type, bool followLinks = true)
    {
        (identity, type) = (default, null);
        if (OperatingSystem.IsWindows())
        {
            return false;
        }

        var buffer = new byte[512];
        if ((followLinks ? StatCall(path, buffer) : LstatCall(path, buffer)) != 0)
        {
            return false;
        }

        identity = (BitConverter.ToUInt64(buffer, 0), BitConverter.ToUInt64(buffer, 8));
        type = TypeOf(buffer);
        return true;
    }

    /// <summary>
    /// The type of the file stat filled <paramref name="buffer"/> for; <c>null</c> on an architecture whose struct stat
    /// layout is not known here. <c>st_mode</c> follows <c>st_nlink</c> (64-bit) on x86-64 (offset 24) and precedes a
    /// 32-bit <c>st_nlink</c> in the generic layout of arm64 (offset 16).
    /// </summary>
    private static UnixFileType? TypeOf(byte[] buffer)
    {
        int? offset = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 24,
            Architecture.Arm64 => 16,
            _ => null,
        };
        return offset is { } at ? (UnixFileType)(BitConverter.ToUInt32(buffer, at) & 0xF000) : null;
    }

    [DllImport("libc", EntryPoint = "lstat", SetLastError = true)]
    private static extern int LstatCall([MarshalAs(UnmanagedType.LPUTF8Str)] string path, [Out] byte[] buffer);

    [DllImport("libc", EntryPoint = "stat", SetLastError = true)]
    private static extern int StatCall([MarshalAs(UnmanagedType.LPUTF8Str)] string path, [Out] byte[] buffer);
}

/// <summary>What a file is, from the type bits of stat's <c>st_mode</c>.</summary>
internal enum UnixFileType
{
    /// <summary>A pipe or FIFO.</summary>
    Fifo = 0x1000,

    /// <summary>A character device (a terminal, <c>/dev/null</c>).</summary>
    CharacterDevice = 0x2000,

    /// <summary>A directory.</summary>
    Directory = 0x4000,

    /// <summary>A block device.</summary>
    BlockDevice = 0x6000,

    /// <summary>A regular file.</summary>
    Regular = 0x8000,

    /// <summary>A symbolic link (lstat only).</summary>
    Link = 0xA000,

    /// <summary>A socket.</summary>
    Socket = 0xC000,
}
