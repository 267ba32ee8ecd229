using System.Diagnostics;
using System.Text;
using ActorQueue.Cli.Jobs;
using ActorQueue.Tests.Cli;

namespace ActorQueue.Tests.Review;

/// <summary>
/// Round 50: a usage error's one line reaches a stderr reader that is slow to read. The line was queued
/// (<c>QueuedStderr</c>) and written at the process's end, which gives a write its reader takes none of for half a
/// second up: on a pipe already full (stderr shared with another writer, a reader that reads later), the command
/// exited 255 and said nothing.
/// </summary>
public sealed class UsageLineRound50Tests : IDisposable
{
    /// <summary>
    /// How long the test's reader reads nothing, unless the command has exited first: long past the half second after
    /// which the end gives an untaken write up (the command that loses its line exits within about a second), and
    /// never reached by one that waits for its reader (the test then reads, and it exits).
    /// </summary>
    private static readonly TimeSpan ReaderAway = AbandonableOutput.Grace * 10;

    private readonly CliScratch _scratch = new();

    public void Dispose() => _scratch.Dispose();

    /// <summary>
    /// stderr is a pipe that is full when the command starts, and its reader reads nothing for a while (or until the
    /// command has exited); then it reads everything. Failed before: the command exited 255 within about a second and
    /// its stderr held nothing after the filler: Assert.Equal() Failure, expected "actorqueue: cannot read 'missing.txt':
    /// ...", actual "" (the same for an unknown option, parsed before the run, and for node's missing --seed).
    /// Mutants: the usage line queued as before, not awaited (all three cases fail: that is the code before); awaited only
    /// when the writer given is the queue itself, not Console.Error, Console's wrapper of it (the --frobnicate case fails).
    /// </summary>
    [Theory]
    [InlineData("run missing.txt", "actorqueue: cannot read 'missing.txt': ")]
    [InlineData("run --frobnicate x", "actorqueue: unknown option '--frobnicate'")]
    [InlineData("node -j 1", "actorqueue: node needs --seed HOST:PORT")]
    public async Task A_usage_line_waits_for_a_reader_that_reads_late(string command, string line)
    {
        var fifo = _scratch.PathOf("stderr.fifo");
        using (var mkfifo = Process.Start("mkfifo", [fifo]))
        {
            await mkfifo.WaitForExitAsync();
            Assert.Equal(0, mkfifo.ExitCode);
        }

        // Read and write: the pipe has a reader (so the command's open of it for writing does not wait) and never ends
        // (the test writes an end marker of its own once the command has exited).
        await using var pipe = new FileStream(fifo, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, bufferSize: 0);
        var filler = FullPipe.Fill(fifo);

        var start = CliProcess.ThroughShell(_scratch.Dir, $"exec \"$@\" 2>'{fifo}'", command.Split(' '));
        start.RedirectStandardError = false;
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        using (var away = new CancellationTokenSource(ReaderAway))
        {
            try
            {
                await process.WaitForExitAsync(away.Token);
            }
            catch (OperationCanceledException)
            {
                // Still waiting for its reader, as it should: the reader comes back.
            }
        }

        await ReadExactlyAsync(pipe, filler);
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        await pipe.WriteAsync("#end\n"u8.ToArray());
        var written = await ReadToMarkerAsync(pipe, "#end\n");

        Assert.Equal(255, process.ExitCode);
        Assert.StartsWith(line, written, StringComparison.Ordinal);
        Assert.Single(written.TrimEnd('\n').Split('\n'));
    }

    private static async Task ReadExactlyAsync(Stream pipe, long count)
    {
        var buffer = new byte[4096];
        for (long read = 0; read < count;)
        {
            var n = await pipe.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, count - read)));
            Assert.True(n > 0, "the pipe ended");
            read += n;
        }
    }

    private static async Task<string> ReadToMarkerAsync(Stream pipe, string marker)
    {
        var text = new StringBuilder();
        var buffer = new byte[4096];
        while (!text.ToString().EndsWith(marker, StringComparison.Ordinal))
        {
            var n = await pipe.ReadAsync(buffer);
            Assert.True(n > 0, "the pipe ended");
            text.Append(Encoding.UTF8.GetString(buffer, 0, n));
        }

        return text.ToString()[..^marker.Length];
    }
}
