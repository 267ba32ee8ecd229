using System.Diagnostics;

namespace ActorQueue.Cli.Jobs;

/// <summary>
/// <c>--delay</c>: job starts at least a given time apart, the first at once, and in input order, as GNU parallel
/// starts them. Every job queued is expected (<see cref="Expect"/>, by its sequence number); the turn to start goes
/// to the lowest expected number, one job at a time, so workers that take jobs in another order cannot start them in
/// another order. A job that leaves without starting (a bad tag, the run stopping) is <see cref="Forget">forgotten</see>.
/// </summary>
/// <remarks>
/// A retry is expected again when it asks for its turn, once its backoff is over: its number is below every job not yet started, so it starts
/// next, spaced like any start; during the backoff other jobs start. A turn covers the job's way to its start (a -j
/// slot, the delay) and its tags' slots when they are free; a job that has to wait for a --limit slot gives its turn
/// up meanwhile (later jobs start) and asks again once it holds the slot, so no job waits behind a busy tag.
/// </remarks>
internal sealed class StartSpacing(TimeSpan delay)
{
    private readonly TimeSpan _delay = delay;

    private readonly Lock _lock = new();

    /// <summary>Jobs queued and not yet started (or gone), by sequence number: the lowest has the next turn.</summary>
    private readonly SortedSet<long> _expected = [];

    /// <summary>Jobs waiting for their turn.</summary>
    private readonly Dictionary<long, TaskCompletionSource> _waiting = [];

    /// <summary>Whether a job has its turn.</summary>
    private bool _busy;

    /// <summary>When the next start may happen (a <see cref="Stopwatch"/> timestamp); 0 before the first.</summary>
    private long _next;

    /// <summary>Job <paramref name="seq"/> is queued: it starts in its place among the others.</summary>
    public void Expect(long seq)
    {
        lock (_lock)
        {
            _expected.Add(seq);
        }
    }

    /// <summary>Job <paramref name="seq"/> will not start (again): the jobs after it no longer wait for it.</summary>
    public void Forget(long seq)
    {
        lock (_lock)
        {
            if (_expected.Remove(seq))
            {
                GrantNext();
            }
        }
    }

    /// <summary>
    /// Waits until expected job <paramref name="seq"/> has the turn to start; <c>null</c> when
    /// <paramref name="cancellationToken"/> stops the run meanwhile. The turn ends when it is disposed.
    /// </summary>
    public async Task<Turn?> TakeTurnAsync(long seq, CancellationToken cancellationToken)
    {
        TaskCompletionSource granted;
        lock (_lock)
        {
            _expected.Add(seq);
            if (!_busy && _expected.Min == seq)
            {
                _busy = true;
                return new Turn(this, seq);
            }

            granted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiting[seq] = granted;
        }

        await using (cancellationToken.Register(() =>
        {
            lock (_lock)
            {
                if (_waiting.Remove(seq))
                {
                    granted.TrySetCanceled(cancellationToken);
                    _expected.Remove(seq); // it will not start: the jobs after it do not wait for it
                    GrantNext();
                }
            }
        }))
        {
            try
            {
                await granted.Task.ConfigureAwait(false);
                return new Turn(this, seq);
            }
            catch (OperationCanceledException)
            {
                return null;
            }
        }
    }

    /// <summary>Gives the turn to the lowest expected job if it is waiting and nobody has the turn (under the lock).</summary>
    private void GrantNext()
    {
        if (!_busy && _expected.Count > 0 && _waiting.Remove(_expected.Min, out var next))
        {
            _busy = true;
            next.TrySetResult();
        }
    }

    private void EndTurn(long seq)
    {
        lock (_lock)
        {
            _expected.Remove(seq);
            _busy = false;
            GrantNext();
        }
    }

    /// <summary>One job's turn to start; disposing it gives the turn to the next job.</summary>
    internal sealed class Turn(StartSpacing spacing, long seq) : IDisposable
    {
        private int _ended;

        /// <summary>
        /// Waits until the delay since the previous start has passed and returns the start time to record (taken at the
        /// instant the spacing is measured from, so recorded starts are never closer than the delay); <c>null</c> when
        /// <paramref name="cancellationToken"/> stops the run meanwhile.
        /// </summary>
        public async Task<DateTimeOffset?> WaitDelayAsync(CancellationToken cancellationToken)
        {
            try
            {
                // A timer may fire a little early on a coarse clock: wait again for what is left.
                while (spacing._next != 0 && Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), spacing._next) is { Ticks: > 0 } wait)
                {
                    await Task.Delay(wait, cancellationToken).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException)
            {
                return null;
            }

            var started = DateTimeOffset.UtcNow;
            spacing._next = Stopwatch.GetTimestamp() + (long)(spacing._delay.TotalSeconds * Stopwatch.Frequency);
            return started;
        }

        /// <summary>Ends the turn (once): the next expected job may have it.</summary>
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _ended, 1) == 0)
            {
                spacing.EndTurn(seq);
            }
        }
    }
}
