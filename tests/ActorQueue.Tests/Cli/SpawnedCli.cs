using System.Collections;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace ActorQueue.Tests.Cli;

/// <summary>
/// A started <c>actorqueue</c> whose stdout is the write end of a pipe this test made and set O_NONBLOCK, as a parent
/// that shares its pipe with <c>actorqueue</c> may have set it (node.js does on its stdio): <c>Process.Start</c> makes
/// its pipes itself, so a test cannot set their flags. Started with posix_spawn(3) (stdin <c>/dev/null</c>, stderr a
/// file, every signal at its default and none blocked, as <see cref="CliProcess.StartInfo"/> has them); Linux only.
/// </summary>
internal sealed class SpawnedCli : IDisposable
{
    private const int NonBlocking = 0x800; // O_NONBLOCK

    private const int CloseOnExec = 0x80000; // O_CLOEXEC

    private const int GetFlags = 3; // F_GETFL

    private const int SetFlags = 4; // F_SETFL

    private const int GetPipeSize = 1032; // F_GETPIPE_SZ

    private const int BytesToRead = 0x541B; // FIONREAD

    private const short SetSignalDefaults = 0x04; // POSIX_SPAWN_SETSIGDEF

    private const short SetSignalMask = 0x08; // POSIX_SPAWN_SETSIGMASK

    private readonly int _readEnd;

    private readonly Task<int> _exit;

    private SpawnedCli(int pid, int readEnd, int capacity)
    {
        Pid = pid;
        _readEnd = readEnd;
        Capacity = capacity;
        Output = new FileStream(new SafeFileHandle(readEnd, ownsHandle: true), FileAccess.Read, bufferSize: 0);
        _exit = Task.Factory.StartNew(() => WaitForExit(pid), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    public int Pid { get; }

    /// <summary>The read end of stdout's pipe (blocking); its end comes when the runner has exited.</summary>
    public FileStream Output { get; }

    /// <summary>How many bytes the pipe holds (F_GETPIPE_SZ): 64 KiB unless the system gives less.</summary>
    public int Capacity { get; }

    /// <summary>How many bytes wait in the pipe for its reader (FIONREAD).</summary>
    public int Unread => IoControl(_readEnd, BytesToRead, out var count) == 0 ? count : throw Failure("ioctl FIONREAD");

    /// <summary>The exit status as <see cref="System.Diagnostics.Process.ExitCode"/> gives it: 128 + the signal for one killed by a signal.</summary>
    public Task<int> ExitCode => _exit;

    /// <summary>
    /// Starts <c>actorqueue <paramref name="args"/></c> in <paramref name="workingDirectory"/>, its stderr into the file
    /// <paramref name="errorsPath"/> and its stdout into a new O_NONBLOCK pipe, filled by the test with dots to all but
    /// <paramref name="room"/> bytes (<c>null</c>: left empty) before the runner starts.
    /// </summary>
    public static SpawnedCli Start(string workingDirectory, string errorsPath, int? room, params string[] args)
    {
        var fds = new int[2];
        Check(Pipe(fds, CloseOnExec), "pipe2");
        var (readEnd, writeEnd) = (fds[0], fds[1]);
        try
        {
            Check(Control(writeEnd, SetFlags, Control(writeEnd, GetFlags, 0) | NonBlocking), "fcntl F_SETFL O_NONBLOCK");
            var capacity = Control(writeEnd, GetPipeSize, 0);
            Check(capacity, "fcntl F_GETPIPE_SZ");
            if (room is { } left)
            {
                var filler = new byte[capacity - left];
                Array.Fill(filler, (byte)'.');
                if (WriteDescriptor(writeEnd, filler, filler.Length) != filler.Length)
                {
                    throw Failure("write the filler");
                }
            }

            var pid = Spawn(workingDirectory, errorsPath, writeEnd, CliProcess.StartInfo(workingDirectory, args));
            return new SpawnedCli(pid, readEnd, capacity);
        }
        catch
        {
            _ = Close(readEnd);
            throw;
        }
        finally
        {
            _ = Close(writeEnd); // the runner's copy (its fd 1) is the pipe's only writer now
        }
    }

    /// <summary>Kills the runner if it still runs (its jobs are <see cref="CliScratch"/>'s to kill), and closes the read end.</summary>
    public void Dispose()
    {
        if (!_exit.IsCompleted)
        {
            _ = Kill(Pid, 9);
            _exit.Wait();
        }

        Output.Dispose();
    }

    private static int Spawn(string workingDirectory, string errorsPath, int stdout, System.Diagnostics.ProcessStartInfo start)
    {
        // glibc's posix_spawn_file_actions_t (80 bytes), posix_spawnattr_t (336) and sigset_t (128), with room to spare.
        var actions = Marshal.AllocHGlobal(1024);
        var attributes = Marshal.AllocHGlobal(1024);
        var noSignals = Marshal.AllocHGlobal(256);
        var allSignals = Marshal.AllocHGlobal(256);
        try
        {
            Checked(FileActionsInit(actions), "posix_spawn_file_actions_init");
            Checked(AddDup2(actions, stdout, 1), "posix_spawn_file_actions_adddup2");
            Checked(AddOpen(actions, 0, "/dev/null", 0, 0), "posix_spawn_file_actions_addopen stdin");
            Checked(AddOpen(actions, 2, errorsPath, 0x1 | 0x40 | 0x200, Convert.ToInt32("644", 8)), "posix_spawn_file_actions_addopen stderr");
            Checked(AddChdir(actions, workingDirectory), "posix_spawn_file_actions_addchdir_np");
            Checked(AttributesInit(attributes), "posix_spawnattr_init");
            Check(SignalsEmpty(noSignals), "sigemptyset");
            Check(SignalsFill(allSignals), "sigfillset");
            Checked(SetSignalMaskAttribute(attributes, noSignals), "posix_spawnattr_setsigmask");
            Checked(SetSignalDefaultAttribute(attributes, allSignals), "posix_spawnattr_setsigdefault");
            Checked(SetFlagsAttribute(attributes, SetSignalDefaults | SetSignalMask), "posix_spawnattr_setflags");
            string?[] argv = [start.FileName, .. start.ArgumentList, null];
            string?[] environment = [.. Environment.GetEnvironmentVariables().Cast<DictionaryEntry>().Select(e => $"{e.Key}={e.Value}"), null];
            var error = SpawnProcess(out var pid, start.FileName, actions, attributes, argv, environment);
            return error == 0 ? pid : throw new IOException($"posix_spawnp {start.FileName}: {Marshal.GetPInvokeErrorMessage(error)}");
        }
        finally
        {
            _ = FileActionsDestroy(actions);
            _ = AttributesDestroy(attributes);
            Marshal.FreeHGlobal(actions);
            Marshal.FreeHGlobal(attributes);
            Marshal.FreeHGlobal(noSignals);
            Marshal.FreeHGlobal(allSignals);
        }
    }

    private static int WaitForExit(int pid)
    {
        const int interrupted = 4; // EINTR
        int status;
        while (WaitPid(pid, out status, 0) < 0)
        {
            if (Marshal.GetLastPInvokeError() != interrupted)
            {
                throw Failure($"waitpid {pid}");
            }
        }

        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f);
    }

    /// <summary>A libc call's result: -1 (errno set) is a failure.</summary>
    private static void Check(int result, string call)
    {
        if (result < 0)
        {
            throw Failure(call);
        }
    }

    /// <summary>A posix_spawn call's result: the error number itself, 0 for none.</summary>
    private static void Checked(int error, string call)
    {
        if (error != 0)
        {
            throw new IOException($"{call}: {Marshal.GetPInvokeErrorMessage(error)}");
        }
    }

    private static IOException Failure(string call) => new($"{call}: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}");

    [DllImport("libc", EntryPoint = "pipe2", SetLastError = true)]
    private static extern int Pipe(int[] fds, int flags);

    [DllImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static extern int Control(int fd, int command, int argument);

    [DllImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static extern int IoControl(int fd, nuint request, out int value);

    [DllImport("libc", EntryPoint = "write", SetLastError = true)]
    private static extern nint WriteDescriptor(int fd, byte[] buffer, nint count);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int Close(int fd);

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    [DllImport("libc", EntryPoint = "waitpid", SetLastError = true)]
    private static extern int WaitPid(int pid, out int status, int options);

    [DllImport("libc", EntryPoint = "posix_spawn_file_actions_init")]
    private static extern int FileActionsInit(IntPtr actions);

    [DllImport("libc", EntryPoint = "posix_spawn_file_actions_destroy")]
    private static extern int FileActionsDestroy(IntPtr actions);

    [DllImport("libc", EntryPoint = "posix_spawn_file_actions_adddup2")]
    private static extern int AddDup2(IntPtr actions, int fd, int newFd);

    [DllImport("libc", EntryPoint = "posix_spawn_file_actions_addopen")]
    private static extern int AddOpen(IntPtr actions, int fd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, int mode);

    [DllImport("libc", EntryPoint = "posix_spawn_file_actions_addchdir_np")]
    private static extern int AddChdir(IntPtr actions, [MarshalAs(UnmanagedType.LPUTF8Str)] string path);

    [DllImport("libc", EntryPoint = "posix_spawnattr_init")]
    private static extern int AttributesInit(IntPtr attributes);

    [DllImport("libc", EntryPoint = "posix_spawnattr_destroy")]
    private static extern int AttributesDestroy(IntPtr attributes);

    [DllImport("libc", EntryPoint = "posix_spawnattr_setflags")]
    private static extern int SetFlagsAttribute(IntPtr attributes, short flags);

    [DllImport("libc", EntryPoint = "posix_spawnattr_setsigmask")]
    private static extern int SetSignalMaskAttribute(IntPtr attributes, IntPtr signals);

    [DllImport("libc", EntryPoint = "posix_spawnattr_setsigdefault")]
    private static extern int SetSignalDefaultAttribute(IntPtr attributes, IntPtr signals);

    [DllImport("libc", EntryPoint = "sigemptyset", SetLastError = true)]
    private static extern int SignalsEmpty(IntPtr signals);

    [DllImport("libc", EntryPoint = "sigfillset", SetLastError = true)]
    private static extern int SignalsFill(IntPtr signals);

    // LPStr is UTF-8 on Unix (an array of strings takes no LPUTF8Str).
    [DllImport("libc", EntryPoint = "posix_spawnp")]
    private static extern int SpawnProcess(out int pid, [MarshalAs(UnmanagedType.LPUTF8Str)] string file, IntPtr actions, IntPtr attributes,
        [MarshalAs(UnmanagedType.LPArray, ArraySubType = UnmanagedType.LPStr)] string?[] argv,
        [MarshalAs(UnmanagedType.LPArray, ArraySubType = UnmanagedType.LPStr)] string?[] environment);
}
