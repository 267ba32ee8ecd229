using System.Diagnostics;

namespace ActorQueue.Cli.Jobs;

/// <summary><c>--delay</c>: job starts at least a given time apart, the first at once, as GNU parallel spaces them.</summary>
internal sealed class StartSpacing(TimeSpan delay)
{
    /// <summary>Held by the start that is waiting for its turn, so starts take turns in the order they asked.</summary>
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>When the next start may happen (a <see cref="Stopwatch"/> timestamp); 0 before the first.</summary>
    private long _next;

    /// <summary>
    /// Waits for this start's turn and returns the start time to record (taken at the instant the spacing is measured
    /// from, so recorded starts are never closer than the delay); <c>null</c> when <paramref name="cancellationToken"/>
    /// stops the run meanwhile.
    /// </summary>
    public async Task<DateTimeOffset?> WaitTurnAsync(CancellationToken cancellationToken)
    {
        try
        {
            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return null;
        }

        try
        {
            // A timer may fire a little early on a coarse clock: wait again for what is left.
            while (_next != 0 && Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), _next) is { Ticks: > 0 } wait)
            {
                await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
            }

            var started = DateTimeOffset.UtcNow;
            _next = Stopwatch.GetTimestamp() + (long)(delay.TotalSeconds * Stopwatch.Frequency);
            return started;
        }
        catch (OperationCanceledException)
        {
            return null;
        }
        finally
        {
            _gate.Release();
        }
    }
}
