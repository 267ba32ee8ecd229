using ActorQueue.Coordination;

namespace ActorQueue.Tests.Coordination;

/// <summary>A gate owner that writes down, in order, everything the gate tells it.</summary>
internal sealed class RecordingListener : IPermitGateListener
{
    public List<string> Log { get; } = [];

    public List<(string Waiter, PermitRejection Rejection)> Rejections { get; } = [];

    public PermitSnapshot Published { get; private set; }

    public void Publish(in PermitSnapshot now)
    {
        Published = now;
        Log.Add($"publish {now.InUse}/{now.Waiting}");
    }

    public void Queued(PermitWaiter waiter) => Log.Add($"queued {waiter.Source}");

    public void Granting(PermitWaiter waiter, in PermitGrant grant) => Log.Add($"granting {waiter.Source}");

    public void GrantLost(PermitWaiter waiter, in PermitGrant grant) => Log.Add($"lost {waiter.Source}");

    public void Granted(PermitWaiter waiter, in PermitGrant grant) => Log.Add($"granted {waiter.Source}");

    public Exception Rejecting(PermitWaiter waiter, in PermitRejection rejection)
    {
        Rejections.Add((waiter.Source, rejection));
        Log.Add($"rejecting {waiter.Source} {rejection.Kind}");
        return new InvalidOperationException($"{waiter.Source}: {rejection.Kind}");
    }
}

/// <summary>A waiter whose answers are recorded; <see cref="Withdrawn"/> plays a facade caller that cancelled.</summary>
internal sealed class TestWaiter(string name, int permits = 1, int priority = 0, TimeSpan? timeout = null, long tokens = 0) : PermitWaiter
{
    public bool Withdrawn { get; set; }

    public PermitGrant? Grant { get; private set; }

    public Exception? Error { get; private set; }

    public PermitSnapshot? QueuedWith { get; private set; }

    /// <summary>Runs inside <see cref="TryGrant"/>, as a resumed caller would right after its grant.</summary>
    public Action? OnGrant { get; set; }

    /// <summary>Runs inside <see cref="OnQueued"/>, as a caller told that it waits would.</summary>
    public Action? OnWait { get; set; }

    public override PermitDemand Demand { get; } = new(permits, tokens);

    public override int Priority => priority;

    public override TimeSpan? Timeout => timeout;

    public override string Source => name;

    public override bool IsWithdrawn => Withdrawn;

    public bool IsGranted => Grant is not null;

    public override bool TryGrant(in PermitGrant grant)
    {
        if (Withdrawn)
        {
            return false;
        }

        Grant = grant;
        OnGrant?.Invoke();
        return true;
    }

    public override void Fail(Exception error) => Error = error;

    public override void OnQueued(in PermitSnapshot now)
    {
        QueuedWith = now;
        OnWait?.Invoke();
    }
}

/// <summary>A clock that moves only when told.</summary>
internal sealed class ManualClock : TimeProvider
{
    private long _ticks;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => _ticks;

    public void Advance(TimeSpan by) => _ticks += by.Ticks;
}

/// <summary>
/// A time-based test policy: <c>limit</c> per fixed window of <c>period</c>, all of it back at each window boundary.
/// It stands in for the token bucket and sliding window, which the gate must be able to carry.
/// </summary>
internal sealed class WindowPolicy(long limit, TimeSpan period, PermitMeasure measure = PermitMeasure.Permits) : IPermitPolicy
{
    private TimeSpan _windowStart;

    public PermitMeasure Measure => measure;

    public bool IsTimed => true;

    public long Limit => limit;

    public long InUse { get; private set; }

    public long Available(TimeSpan now)
    {
        CatchUp(now);
        return Math.Max(0, limit - InUse);
    }

    public bool CanTake(long cost, TimeSpan now) => cost <= Available(now);

    public void Take(long cost, TimeSpan now)
    {
        CatchUp(now);
        InUse += cost;
    }

    public void Refund(long cost, TimeSpan now) => InUse -= cost;

    public void Release(long cost, TimeSpan now)
    {
        // A rate forgets nothing on release.
    }

    public void Settle(long charged, long actual, TimeSpan now) => InUse += actual - charged;

    public TimeSpan NextAvailableAt(long cost, TimeSpan now)
    {
        if (CanTake(cost, now))
        {
            return now;
        }

        // Each later window brings the whole limit back: cost beyond what is left now needs that many more windows.
        var beyond = cost - Available(now);
        var windows = (beyond + limit - 1) / limit;
        return _windowStart + (period * windows);
    }

    public void Resize(long newLimit) => limit = newLimit;

    private void CatchUp(TimeSpan now)
    {
        if (now >= _windowStart + period)
        {
            _windowStart += period * Math.Floor((now - _windowStart) / period);
            InUse = 0;
        }
    }
}
