using System.Globalization;

namespace ActorQueue.Cli.Jobs;

/// <summary>
/// GNU parallel's joblog: a header, then one tab-separated line per finished job
/// (<c>Seq Host Starttime JobRuntime Send Receive Exitval Signal Command</c>), flushed as each job ends, so an
/// interrupted run leaves a complete log for <c>--resume</c>.
/// </summary>
internal sealed class JobLog : IDisposable
{
    public const string Header = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand";

    private readonly StreamWriter _writer;
    private readonly Lock _gate = new();

    private JobLog(StreamWriter writer) => _writer = writer;

    /// <summary>Opens the log: appends when resuming an existing log, else starts it with the header.</summary>
    public static JobLog Open(string path, bool append)
    {
        var exists = File.Exists(path) && new FileInfo(path).Length > 0;
        var writer = new StreamWriter(path, append) { AutoFlush = false };
        if (!append || !exists)
        {
            writer.WriteLine(Header);
            writer.Flush();
        }

        return new JobLog(writer);
    }

    /// <summary>The sequence numbers a previous run recorded as finished.</summary>
    public static HashSet<long> ReadFinished(string path)
    {
        var finished = new HashSet<long>();
        if (!File.Exists(path))
        {
            return finished;
        }

        foreach (var line in File.ReadLines(path).Skip(1))
        {
            var tab = line.IndexOf('\t', StringComparison.Ordinal);
            if (tab > 0 && long.TryParse(line.AsSpan(0, tab), NumberStyles.None, CultureInfo.InvariantCulture, out var seq))
            {
                finished.Add(seq);
            }
        }

        return finished;
    }

    /// <summary>Records a finished job; <paramref name="host"/> is the node that ran it, <c>:</c> (GNU parallel's "here") when <c>null</c>.</summary>
    public void Record(long seq, string? host, DateTimeOffset started, TimeSpan runtime, long received, int exitValue, int signal, string command)
    {
        var line = string.Create(CultureInfo.InvariantCulture,
            $"{seq}\t{host ?? ":"}\t{started.ToUnixTimeMilliseconds() / 1000.0,10:0.000}\t{runtime.TotalSeconds,8:0.000}\t0\t{received}\t{exitValue}\t{signal}\t{command.ReplaceLineEndings(" ")}");
        lock (_gate)
        {
            _writer.WriteLine(line);
            _writer.Flush();
        }
    }

    public void Dispose() => _writer.Dispose();
}
