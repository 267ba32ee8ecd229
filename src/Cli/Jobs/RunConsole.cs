using System.Text;

namespace ActorQueue.Cli.Jobs;

/// <summary>
/// A run's stdout and stderr. Each job's output is copied whole under one gate, so jobs never interleave, and byte for
/// byte (with <c>--tag</c>, each line gets its prefix). A failure to write stdout reaches the caller, since the job's
/// output is then lost; stderr is best effort (a closed terminal must not stop the run from finishing its jobs).
/// </summary>
/// <remarks>
/// The runner's kill (a second Ctrl-C, SIGQUIT: <paramref name="kill"/>) abandons a stdout write held by a reader who
/// stopped reading (<c>actorqueue run ... | sleep 1000</c>), so the kill ends the run rather than waiting for that reader.
/// <paramref name="stderr"/> comes given up already at the stop (the first Ctrl-C, SIGTERM, SIGHUP, which comes with or
/// before the kill) by whoever owns it — the process's queued stderr (<see cref="Commands.QueuedStderr.Output"/>), whose
/// pump gives it up: the run stopped must end once its running jobs have, and a stderr that nobody reads
/// (a killed reader whose child still holds the pipe, a terminal's Ctrl-S) held every later job's report behind the
/// gate, so the run never ended; a stdout reader gets the finished jobs' output until the kill. A write to stderr is
/// given up only when its reader takes none of it for half a second: it goes in pieces of a pipe's atomic write, so a
/// reader that reads slowly (a slow terminal or link) still gets every line and the summary.
/// </remarks>
internal sealed class RunConsole(Stream stdout, Stream stderr, bool tag, CancellationToken kill = default)
{
    private const int CopyBufferSize = 64 * 1024;

    private readonly AbandonableOutput _stdout = new(stdout, kill);

    /// <summary>Held while anything is written, so one job's output, a message and a progress line never mix.</summary>
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>Writes a job's stdout, then (also when stdout failed) its stderr and the runner's <paramref name="message"/> about it.</summary>
    /// <exception cref="IOException">stdout could not be written.</exception>
    /// <exception cref="UnauthorizedAccessException">stdout is not open for writing.</exception>
    public async Task WriteJobAsync(string id, CapturedOutput output, CapturedOutput errors, string? message)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            try
            {
                await CopyAsync(output, _stdout, id, finalNewline: tag).ConfigureAwait(false);
            }
            finally
            {
                // Also when stdout failed (a full disk): the job's stderr is all that is left of it.
                await BestEffortAsync(async () =>
                {
                    // A job's stderr is for people: it ends with a newline, so the next line starts on its own.
                    await CopyAsync(errors, stderr, id, finalNewline: true).ConfigureAwait(false);
                    if (message is not null)
                    {
                        await stderr.WriteAsync(Encoding.UTF8.GetBytes(message + "\n")).ConfigureAwait(false);
                    }
                }).ConfigureAwait(false);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Writes one of the runner's own lines to stderr.</summary>
    public Task LineAsync(string line) => TextAsync(line + "\n");

    /// <summary>Writes text to stderr as it is (progress lines redraw themselves with <c>\r</c>).</summary>
    public async Task TextAsync(string text)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            await BestEffortAsync(() => stderr.WriteAsync(Encoding.UTF8.GetBytes(text)).AsTask()).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task CopyAsync(CapturedOutput captured, Stream destination, string id, bool finalNewline)
    {
        if (captured.Length == 0)
        {
            return;
        }

        var buffered = new BufferedStream(destination, CopyBufferSize); // not disposed: that would close stdout
        var prefix = Encoding.UTF8.GetBytes(id + "\t");
        var atLineStart = true;
        await foreach (var chunk in captured.ChunksAsync().ConfigureAwait(false))
        {
            if (!tag)
            {
                await buffered.WriteAsync(chunk).ConfigureAwait(false);
                continue;
            }

            for (var rest = chunk; rest.Length > 0;)
            {
                if (atLineStart)
                {
                    await buffered.WriteAsync(prefix).ConfigureAwait(false);
                }

                var newline = rest.Span.IndexOf((byte)'\n');
                var line = newline < 0 ? rest : rest[..(newline + 1)];
                await buffered.WriteAsync(line).ConfigureAwait(false);
                atLineStart = newline >= 0;
                rest = rest[line.Length..];
            }
        }

        if (finalNewline && (tag ? !atLineStart : !await captured.EndsWithNewlineAsync().ConfigureAwait(false)))
        {
            await buffered.WriteAsync("\n"u8.ToArray()).ConfigureAwait(false);
        }

        await buffered.FlushAsync().ConfigureAwait(false);
    }

    private static async Task BestEffortAsync(Func<Task> write)
    {
        try
        {
            await write().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // stderr is gone (a closed terminal): the jobs' results still count and are logged.
        }
    }
}
