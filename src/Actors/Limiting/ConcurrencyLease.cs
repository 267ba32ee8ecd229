using System.Diagnostics;

namespace ActorQueue.Actors;

/// <summary>Gives a lease's slot back to the limiter that granted it.</summary>
internal interface ILeaseReleaser
{
    /// <summary>Returns the slot of <paramref name="lease"/>; called exactly once per lease.</summary>
    void Release(ConcurrencyLease lease);
}

/// <summary>
/// A slot held in a concurrency limiter. Disposing it gives the slot back; disposing it again does nothing.
/// </summary>
[DebuggerDisplay("Lease {LeaseId} for {Source}, released = {IsReleased}")]
public sealed class ConcurrencyLease : IDisposable, IAsyncDisposable
{
    /// <summary>Where the slot goes back to.</summary>
    private readonly ILeaseReleaser _releaser;

    /// <summary>1 once the lease has been released; makes release idempotent across threads.</summary>
    private int _released;

    internal ConcurrencyLease(ILeaseReleaser releaser, long leaseId, string source, int permits = 1)
    {
        _releaser = releaser;
        LeaseId = leaseId;
        Source = source;
        Permits = permits;
    }

    /// <summary>The lease's number, unique within the limiter that granted it.</summary>
    public long LeaseId { get; }

    /// <summary>How many permits it holds (its weight); all of them come back together.</summary>
    public int Permits { get; }

    /// <summary>The source the slot was acquired for.</summary>
    public string Source { get; }

    /// <summary>Whether the slot has been given back.</summary>
    public bool IsReleased => Volatile.Read(ref _released) != 0;

    /// <summary>Gives the slot back. Idempotent; never throws, also after the limiter was disposed.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            _releaser.Release(this);
        }
    }

    /// <summary>Gives the slot back, as <see cref="Dispose"/>.</summary>
    /// <returns>A completed task.</returns>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return default;
    }
}
