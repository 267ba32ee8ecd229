using System.Globalization;
using System.Text;

namespace ActorQueue.Cli.Jobs;

/// <summary>
/// GNU parallel's joblog: a header, then one tab-separated line per finished job
/// (<c>Seq Host Starttime JobRuntime Send Receive Exitval Signal Command</c>), written as each job ends, so an
/// interrupted run leaves a complete log for <c>--resume</c>. A record counts only once its line is whole: a crash in
/// the middle of a write leaves a last line without its newline, which <c>--resume</c> drops before it appends.
/// </summary>
internal sealed class JobLog : IDisposable
{
    public const string Header = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand";

    private readonly FileStream _file;

    /// <summary>
    /// Where records go: <see cref="_file"/>, or for a joblog that is a pipe or a terminal (<c>--joblog /dev/stderr</c>),
    /// the file given up at the run's stop when its reader takes nothing (as stderr is: <see cref="RunConsole"/>), so a
    /// reader that holds the pipe and reads nothing cannot hold a stopped run for ever.
    /// </summary>
    private readonly Stream _out;

    /// <summary>Held while a record is written, so records never mix; waited for without blocking a thread.</summary>
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>Set when a write failed part-way, so the next record starts on a line of its own.</summary>
    private bool _torn;

    /// <summary>
    /// Where the log's whole records end (what <see cref="BeginAsync"/> keeps of a regular file: 0 for a new log), or
    /// <c>null</c> once begun (a device or pipe begins at its open: nothing kept in it can be lost).
    /// </summary>
    private long? _keep;

    private JobLog(FileStream file, CancellationToken stop, string path, (ulong, ulong)? made)
    {
        _file = file;
        _out = file.CanSeek ? file : AbandonableOutput.GivenUpAtStop(file, stop);
        Path = path;
        Made = made;
    }

    /// <summary>The joblog's path, as given.</summary>
    public string Path { get; }

    /// <summary>The file's identity if this open created it (<see cref="FileIdentity.OpenCreating"/>): a refused run removes it; else <c>null</c>.</summary>
    public (ulong Device, ulong Inode)? Made { get; }

    /// <summary>The sequence numbers the log held as finished when it was opened (empty for a new log).</summary>
    public IReadOnlySet<long> Finished { get; private init; } = new HashSet<long>();

    /// <summary>How many bytes of an incomplete last record <see cref="OpenAsync"/> dropped.</summary>
    public long DroppedBytes { get; private init; }

    /// <summary>
    /// Takes a write lock on the joblog's first byte (a POSIX record lock on Unix, which other processes' plain reads
    /// ignore), held until the log is disposed; another run holding it makes the open fail.
    /// </summary>
    /// <exception cref="IOException">Another run writes this joblog.</exception>
    private static void LockForThisRun(FileStream file, bool regular)
    {
        if (!regular || OperatingSystem.IsMacOS() || OperatingSystem.IsIOS() || OperatingSystem.IsTvOS() || OperatingSystem.IsMacCatalyst())
        {
            return; // a device or pipe is nobody's record; macOS has no FileStream.Lock
        }

        try
        {
            file.Lock(0, 1);
        }
        catch (IOException error)
        {
            throw new IOException("another run is writing it", error); // .NET's own words only said so again
        }
    }

    /// <summary>
    /// Opens the log, locked for this run, and checks it without changing it: for <paramref name="resume"/>, reads the
    /// finished jobs and where the last whole record ends. A regular file is changed only once the run starts
    /// (<see cref="BeginAsync"/>): a run refused before that (its state belongs to another input, its queue cannot open)
    /// leaves an existing joblog as it was (h232's review: it was cut to its header, or its last record dropped).
    /// </summary>
    /// <exception cref="IOException">The file cannot be read or written.</exception>
    /// <exception cref="UnauthorizedAccessException">The file cannot be opened.</exception>
    /// <exception cref="InvalidDataException">The file to resume is not a joblog.</exception>
    /// <param name="path">The joblog file.</param>
    /// <param name="resume">Read the finished jobs and append, instead of starting a new log.</param>
    /// <param name="rerunFailed">
    /// <c>--resume-failed</c>: a job counts as finished only if its last record says it succeeded (exit 0, no signal),
    /// so failed jobs run again and their new records follow the old ones, as GNU parallel does.
    /// </param>
    /// <param name="stop">
    /// The run's stop (first Ctrl-C, SIGTERM, SIGHUP): after it, a write to a joblog that is a pipe or a terminal whose
    /// reader takes nothing for <see cref="AbandonableOutput.Grace"/> is given up (its record fails as a write error does).
    /// </param>
    public static async Task<JobLog> OpenAsync(string path, bool resume, bool rerunFailed = false, CancellationToken stop = default)
    {
        var (file, made, regular) = OpenLocked(path);
        try
        {
            if (!resume)
            {
                var fresh = new JobLog(file, stop, path, made) { _keep = 0 };
                if (!regular)
                {
                    await fresh.BeginAsync().ConfigureAwait(false);
                }

                return fresh;
            }

            if (!regular)
            {
                throw new InvalidDataException($"'{path}' is not a regular file, so the jobs it records cannot be read back to go on where the run stopped");
            }

            var (finished, whole) = await ReadFinishedAsync(file, path, rerunFailed).ConfigureAwait(false);
            return new JobLog(file, stop, path, made) { Finished = finished, DroppedBytes = file.Length - whole, _keep = whole };
        }
        catch
        {
            await file.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// The run starts: a new log is cut to nothing and gets its header; a resumed one loses its incomplete last record
    /// (<see cref="DroppedBytes"/>) and goes on after its last whole one. Once; a device or pipe began at its open.
    /// </summary>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public async Task BeginAsync()
    {
        if (_keep is not { } keep)
        {
            return;
        }

        _keep = null;
        if (_file.CanSeek && FileIdentity.IsRegularFile(Path) != false)
        {
            _file.SetLength(keep);
            _file.Seek(keep, SeekOrigin.Begin);
        }

        if (keep == 0)
        {
            await WriteAsync(Header).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Opens the file without truncating (its own creating open tells whether this run made it) and takes its lock: a
    /// second run on the same joblog is refused instead of truncating the first one's records. Readers are not locked
    /// out. A lock taken on a file no longer at that name (a refused run removed the joblog it made between this open
    /// and the lock) is taken again on the file that is there.
    /// </summary>
    private static (FileStream File, (ulong, ulong)? Made, bool Regular) OpenLocked(string path)
    {
        for (var attempt = 0; ; attempt++)
        {
            var (file, made) = FileIdentity.OpenCreating(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, bufferSize: 0);
            try
            {
                // A device such as /dev/null seeks but cannot be truncated, and its record lock would be every run's lock.
                var regular = file.CanSeek && FileIdentity.IsRegularFile(path) != false;
                LockForThisRun(file, regular);
                if (!regular || attempt >= 10 || FileIdentity.Of(file) is not { } held || FileIdentity.Of(path) == held)
                {
                    return (file, made, regular);
                }
            }
            catch
            {
                file.Dispose();
                throw;
            }

            file.Dispose();
        }
    }

    /// <summary>The finished jobs' sequence numbers, and where the last whole line ends.</summary>
    private static async Task<(HashSet<long> Finished, long Whole)> ReadFinishedAsync(FileStream file, string path, bool rerunFailed)
    {
        var finished = new HashSet<long>();
        var reader = new LineReader(file, skipLongLines: false);
        if (await reader.ReadLineAsync().ConfigureAwait(false) is not ({ } first, var firstWhole))
        {
            return (finished, 0);
        }

        if (reader.TooLong)
        {
            throw new InvalidDataException($"'{path}' is not a joblog (its first line is longer than {LineReader.MaxLineText})");
        }

        var header = Encoding.UTF8.GetBytes(Header);
        if (firstWhole ? !first.AsSpan().SequenceEqual(header) : !header.AsSpan().StartsWith(first))
        {
            throw new InvalidDataException($"'{path}' is not a joblog (its first line is not the joblog header)");
        }

        if (!firstWhole)
        {
            return (finished, 0); // even the header was cut short
        }

        var whole = reader.Position;
        while (await reader.ReadLineAsync().ConfigureAwait(false) is ({ } line, true) && !reader.TooLong)
        {
            whole = reader.Position;
            if (ParseRecord(line) is var (seq, succeeded))
            {
                if (succeeded || !rerunFailed)
                {
                    finished.Add(seq);
                }
                else
                {
                    finished.Remove(seq);
                }
            }
        }

        if (reader.TooLong)
        {
            throw new InvalidDataException($"'{path}' has a line longer than {LineReader.MaxLineText}, which no joblog record is");
        }

        return (finished, whole);
    }

    /// <summary>The sequence number of a well-formed record and whether it succeeded; <c>null</c> for anything else.</summary>
    private static (long Seq, bool Succeeded)? ParseRecord(byte[] line)
    {
        var fields = Encoding.UTF8.GetString(line).Split('\t', 9);
        return fields.Length == 9
               && long.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var seq)
               && double.TryParse(fields[2], NumberStyles.Float, CultureInfo.InvariantCulture, out _)
               && double.TryParse(fields[3], NumberStyles.Float, CultureInfo.InvariantCulture, out _)
               && fields[4..8].All(f => long.TryParse(f, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _))
            ? (seq, fields[6] == "0" && fields[7] == "0")
            : null;
    }

    /// <summary>Records a finished job; <paramref name="host"/> is the node that ran it, <c>:</c> (GNU parallel's "here") when <c>null</c>.</summary>
    /// <exception cref="IOException">The record could not be written (or, to a pipe or terminal, was given up after the stop).</exception>
    public Task RecordAsync(long seq, string? host, DateTimeOffset started, TimeSpan runtime, long received, int exitValue, int signal, string command) =>
        WriteAsync(string.Create(CultureInfo.InvariantCulture,
            $"{seq}\t{host ?? ":"}\t{started.ToUnixTimeMilliseconds() / 1000.0,10:0.000}\t{runtime.TotalSeconds,8:0.000}\t0\t{received}\t{exitValue}\t{signal}\t{command.ReplaceLineEndings(" ")}"));

    private async Task WriteAsync(string line)
    {
        var bytes = Encoding.UTF8.GetBytes(line + "\n");
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_torn)
            {
                await _out.WriteAsync("\n"u8.ToArray()).ConfigureAwait(false);
                _torn = false;
            }

            await _out.WriteAsync(bytes).ConfigureAwait(false);
        }
        catch (IOException)
        {
            _torn = true;
            throw;
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose() => _file.Dispose(); // not the gate: a record given up at the stop may still be releasing it
}
