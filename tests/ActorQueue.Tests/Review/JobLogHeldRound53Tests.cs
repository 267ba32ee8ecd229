using ActorQueue.Cli.Commands;
using ActorQueue.Cli.Jobs;
using ActorQueue.Tests.Cli;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 53: a run that made a new joblog and ended before it was accepted (interrupted while it waited for its input,
/// or refused) removed it, empty, even while another process had it open as its <c>--log</c> (whose events a run with
/// <c>--state</c> holds until it is accepted, so the file stays empty meanwhile): that process then wrote its log to a
/// file no name leads to. The run now removes it only under an exclusive lock of its own, which any other open by .NET
/// (a log, a joblog, a lock) makes fail: then the file stays. The run's close of its joblog (<see cref="RunOutputs"/>)
/// is driven in process here, the other process's <c>--log</c> being a second open of the file as <see cref="LogFileSink"/> opens one.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("macos")]
public sealed class JobLogHeldRound53Tests : IDisposable
{
    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// Held by another as its log, the joblog the run made stays, and what the other writes there after the run is over
    /// is in the file at that name. Failed before: "the joblog another process holds as its --log was removed" (both
    /// rows). Mutant: the removal's lock taken shared (<see cref="FileShare.Read"/>, which another log's open does not
    /// refuse) fails alike.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_new_joblog_another_process_holds_as_its_log_stays(bool refused)
    {
        var path = _scratch.PathOf("J");
        var (outputs, jobLog) = await OpenAsync(path, refused);
        await using (var otherLog = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0))
        {
            outputs.Closing(jobLog)!.Dispose();
            outputs.RemoveUnused();
            Assert.True(File.Exists(path), "the joblog another process holds as its --log was removed");
            await otherLog.WriteAsync("{\"@mt\":\"an event\"}\n"u8.ToArray());
        }

        Assert.Equal("{\"@mt\":\"an event\"}\n", await File.ReadAllTextAsync(path));
    }

    /// <summary>
    /// Held by nobody, the joblog the run made goes, as round 52 made it (the interrupted run's, while empty; the refused
    /// run's). Passed before (a control). Mutant: the exclusive lock taken while the run's own joblog is still open (the
    /// old order: remove, then close) fails: "the joblog nobody holds was left".
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_new_joblog_nobody_holds_goes(bool refused)
    {
        var path = _scratch.PathOf("J");
        var (outputs, jobLog) = await OpenAsync(path, refused);

        outputs.Closing(jobLog)!.Dispose();

        Assert.False(File.Exists(path), "the joblog nobody holds was left");
    }

    /// <summary>The joblog <paramref name="path"/> opened new by a run, as <c>run</c> opens it, and the run refused or not (not accepted).</summary>
    private static async Task<(RunOutputs Outputs, JobLog JobLog)> OpenAsync(string path, bool refused)
    {
        var outputs = new RunOutputs();
        var jobLog = await JobLog.OpenAsync(path, resume: false);
        Assert.True(jobLog.Made.HasValue, "the run's open did not make the joblog");
        outputs.Made(path, jobLog.Made);
        if (refused)
        {
            outputs.Refused();
        }

        return (outputs, jobLog);
    }
}
