namespace ActorQueue.Cli.Jobs;

/// <summary>
/// <c>-k</c>: jobs' reports (output, joblog record, count) are handed over as each job ends and carried out in
/// sequence order. No worker waits for its turn (a slow first job must not hold the others' slots); a report whose
/// predecessors are missing waits here, and <see cref="FlushAsync"/> carries out whatever still waits when the run ends,
/// so a sequence number that never reports (a job the run stopped before starting) delays output but never loses it.
/// </summary>
internal sealed class OutputOrder
{
    /// <summary>Held while reports are carried out, so they run one at a time in order.</summary>
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>Reports waiting for an earlier sequence number, by sequence number; <c>null</c> for one with nothing to report.</summary>
    private readonly SortedDictionary<long, Func<Task>?> _waiting = [];

    /// <summary>The sequence number whose report goes next.</summary>
    private long _next = 1;

    /// <summary>Hands over job <paramref name="seq"/>'s report, and carries out every report that is now in order.</summary>
    public async Task ReportAsync(long seq, Func<Task>? report)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            _waiting[seq] = report;
            while (_waiting.Remove(_next, out var next))
            {
                _next++;
                if (next is not null)
                {
                    await next().ConfigureAwait(false);
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Job <paramref name="seq"/> has nothing to print (skipped, not started, failed before running).</summary>
    public Task SkipAsync(long seq) => ReportAsync(seq, null);

    /// <summary>Carries out every report still waiting, in order, whatever is missing before it.</summary>
    public async Task FlushAsync()
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            foreach (var (_, report) in _waiting)
            {
                if (report is not null)
                {
                    await report().ConfigureAwait(false);
                }
            }

            _waiting.Clear();
        }
        finally
        {
            _gate.Release();
        }
    }
}
