namespace ActorQueue.Cli.Jobs;

/// <summary>
/// A fixed-size uniform sample of job durations (reservoir sampling, Algorithm R), so the p50/p95 of a run over
/// millions of jobs costs a constant amount of memory.
/// </summary>
internal sealed class DurationSample(int capacity = 8192)
{
    private readonly double[] _samples = new double[capacity];
    private readonly Random _random = new(12345);
    private readonly Lock _gate = new();
    private long _seen;

    public void Add(double seconds)
    {
        lock (_gate)
        {
            _seen++;
            if (_seen <= _samples.Length)
            {
                _samples[_seen - 1] = seconds;
            }
            else if (_random.NextInt64(_seen) is var slot && slot < _samples.Length)
            {
                _samples[slot] = seconds;
            }
        }
    }

    /// <summary>The sampled durations' <paramref name="p"/>-quantile (0 when none was added).</summary>
    public double Percentile(double p)
    {
        double[] sorted;
        lock (_gate)
        {
            sorted = _samples.AsSpan(0, (int)Math.Min(_seen, _samples.Length)).ToArray();
        }

        Array.Sort(sorted);
        return sorted.Length == 0 ? 0 : sorted[(int)Math.Clamp(Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
    }

    /// <summary>The sampled durations' mean (0 when none was added).</summary>
    public double Average()
    {
        lock (_gate)
        {
            var count = (int)Math.Min(_seen, _samples.Length);
            return count == 0 ? 0 : _samples.AsSpan(0, count).ToArray().Average();
        }
    }
}
