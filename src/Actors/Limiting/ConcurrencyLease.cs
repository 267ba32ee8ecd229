using System.Diagnostics;
using System.Threading.RateLimiting;

namespace ActorQueue.Actors;

/// <summary>Gives a lease's slot back to the limiter that granted it.</summary>
internal interface ILeaseReleaser
{
    /// <summary>Returns the slot of <paramref name="lease"/>; called exactly once per lease.</summary>
    void Release(ConcurrencyLease lease);
}

/// <summary>
/// A slot held in a concurrency limiter. Disposing it gives the slot back; disposing it again does nothing.
/// It is also a <see cref="RateLimitLease"/> (always acquired, without metadata), so the limiters' .NET rate-limiting
/// adapters hand it out as it is and code written against <c>System.Threading.RateLimiting</c> can hold it.
/// </summary>
[DebuggerDisplay("Lease {LeaseId} for {Source}, released = {IsReleased}")]
public sealed class ConcurrencyLease : RateLimitLease, IDisposable, IAsyncDisposable, ITurnOp
{
    /// <summary>Where the slot goes back to.</summary>
    private readonly ILeaseReleaser _releaser;

    /// <summary>1 once the lease has been released; makes release idempotent across threads.</summary>
    private int _released;

    /// <summary>Set while its release waits in a busy turn: a lease released once is its own release op, so a contended release allocates nothing.</summary>
    private ITurnOp? _nextOp;

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

    /// <summary>Always <c>true</c>: a lease exists only once its permits were granted.</summary>
    public override bool IsAcquired => true;

    /// <summary>None: a granted concurrency lease carries no metadata.</summary>
    public override IEnumerable<string> MetadataNames => [];

    /// <summary>Gives the slot back. Idempotent; never throws, also after the limiter was disposed.</summary>
    /// <remarks>
    /// Declared here as well as on <see cref="RateLimitLease"/>, and the lease implements <see cref="IDisposable"/> itself
    /// with it, so a <c>using</c> (which calls <see cref="IDisposable.Dispose"/>) and a caller holding a
    /// <see cref="ConcurrencyLease"/> release without the base's finaliser bookkeeping (it has no finaliser) — also when
    /// the lease is held as a <see cref="RateLimitLease"/>. Only a direct call of <see cref="RateLimitLease.Dispose()"/> takes
    /// the base's path, which releases the same way (<see cref="Dispose(bool)"/>).
    /// </remarks>
    public new void Dispose() => Release();

    /// <summary>Always <c>false</c>: a granted concurrency lease carries no metadata.</summary>
    /// <param name="metadataName">The metadata asked for.</param>
    /// <param name="metadata">Always <c>null</c>.</param>
    /// <returns><c>false</c>.</returns>
    public override bool TryGetMetadata(string metadataName, out object? metadata)
    {
        metadata = null;
        return false;
    }

    /// <summary>Gives the slot back, as <see cref="Dispose()"/> (the <see cref="RateLimitLease.Dispose()"/> path).</summary>
    /// <param name="disposing">Whether it is disposed (it has no finaliser).</param>
    protected override void Dispose(bool disposing) => Release();

    private void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            _releaser.Release(this);
        }
    }

    /// <inheritdoc />
    ITurnOp? ITurnOp.NextOp
    {
        get => _nextOp;
        set => _nextOp = value;
    }

    /// <summary>Gives the slot back, as <see cref="Dispose()"/>.</summary>
    /// <returns>A completed task.</returns>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return default;
    }
}
