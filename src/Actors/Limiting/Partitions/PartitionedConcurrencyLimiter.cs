using System.Threading.RateLimiting;
using System.Diagnostics;
using ActorQueue.Runtime;
using ActorQueue.Telemetry;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// A concurrency limit per key (tenant, API key, host): each key gets a partition with the same
/// <see cref="ConcurrencyLimit"/>, made on the key's first request and dropped once it has held nothing and had
/// nobody waiting for <see cref="IdleTimeout"/>, so any number of distinct keys over time keeps memory bounded by the
/// keys active within one idle timeout (at most one and a half). One actor makes and drops the partitions; requests and
/// releases run in their partition's own turn on the caller's thread, without a message, and a request racing with its
/// partition's drop is served by the partition before the drop or by a new one after it: never lost.
/// </summary>
/// <typeparam name="TKey">The key; compared with its <see cref="object.Equals(object)"/>.</typeparam>
[DebuggerDisplay("{Name ?? \"unnamed\"}: {PartitionCount} partitions")]
public sealed class PartitionedConcurrencyLimiter<TKey> : IDisposable, IAsyncDisposable, IPartitionedLimiter<TKey>
    where TKey : notnull
{
    /// <summary>The actor and the live partitions.</summary>
    private readonly PartitionedGatekeeper _partitions;

    /// <summary>Creates the limiter and its parent actor; partitions come with their first request.</summary>
    /// <param name="limit">Every partition's limits, wait timeout, full-queue mode and clock.</param>
    /// <param name="idleTimeout">How long a partition stays idle before it is stopped; above zero.</param>
    /// <param name="name">A name for traces, metrics, logs and rejection messages (every partition's).</param>
    /// <param name="tracer">Where wait spans go; the library's <see cref="ActorQueueTelemetry.Source"/> when <c>null</c>.</param>
    /// <param name="system">The actor system; the embedded default when <c>null</c>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="idleTimeout"/> is zero, negative or infinite.</exception>
    public PartitionedConcurrencyLimiter(ConcurrencyLimit limit, TimeSpan idleTimeout, string? name = null,
                                         ActivitySource? tracer = null, ActorSystem? system = null)
    {
        ArgumentNullException.ThrowIfNull(limit);
        Limit = limit;
        IdleTimeout = LimitValidation.Period(idleTimeout, nameof(idleTimeout));
        Name = name;
        var runtime = ActorQueueRuntime.Resolve(system);
        var gatekeeper = new GatekeeperSettings(limit.MaxRunning, limit.MaxQueued, limit.WaitTimeout, limit.WhenFull, name,
                                                name ?? runtime.Settings.DefaultLimiterName, new LimiterCounts(), limit.TimeProvider ?? TimeProvider.System);
        _partitions = new PartitionedGatekeeper(gatekeeper, idleTimeout, "partitioned-limiter", tracer, runtime, PartitionTable<Partition>.KeysOf<TKey>());
    }

    /// <summary>The limiter's name; <c>null</c> when unnamed.</summary>
    public string? Name { get; }

    /// <summary>Every partition's limit.</summary>
    public ConcurrencyLimit Limit { get; }

    /// <summary>How long a partition stays idle before it is stopped.</summary>
    public TimeSpan IdleTimeout { get; }

    /// <summary>How many partitions are live now.</summary>
    public int PartitionCount => _partitions.Count;

    /// <summary>
    /// Takes <paramref name="permits"/> permits of <paramref name="key"/>'s partition, as
    /// <see cref="IConcurrencyLimiter.AcquireAsync(int, int, TimeSpan?, string, CancellationToken)"/>. While nobody waits
    /// in a live partition, its free permits are lent: a call they cover claims them with one compare-and-swap and
    /// completes at once, without a message, and its lease gives them back the same way while the loan is open.
    /// </summary>
    /// <param name="key">The partition's key; not <c>null</c>.</param>
    /// <param name="permits">How many permits; at least 1 and at most <see cref="ConcurrencyLimit.MaxRunning"/>.</param>
    /// <param name="priority">Higher is served first within the partition; FIFO within one priority.</param>
    /// <param name="waitTimeout">How long it may wait: <c>null</c> for the limit's default, <see cref="Timeout.InfiniteTimeSpan"/> for ever, zero not at all.</param>
    /// <param name="source">Who asks; shows in traces and rejection messages.</param>
    /// <param name="cancellationToken">Withdraws the request while it waits.</param>
    /// <returns>The lease; dispose it to give the permits back.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is <c>null</c>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="permits"/> or <paramref name="waitTimeout"/> is out of range.</exception>
    /// <exception cref="ConcurrencyLimitExceededException">The partition's queue is full, or this waiter was evicted.</exception>
    /// <exception cref="ConcurrencyWaitTimeoutException">The wait timeout passed.</exception>
    /// <exception cref="ObjectDisposedException">The limiter is disposed.</exception>
    public ValueTask<ConcurrencyLease> AcquireAsync(TKey key, int permits = 1, int priority = 0, TimeSpan? waitTimeout = null,
                                                    string source = "unnamed", CancellationToken cancellationToken = default)
    {
        var timeout = Check(key, permits, waitTimeout, source, nameof(permits));
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<ConcurrencyLease>(cancellationToken);
        }

        return _partitions.TryClaim(key, permits, source, out var live) is { } claimed
            ? ValueTask.FromResult(claimed)
            : _partitions.Send(new PartitionAcquireRequest(PartitionedGatekeeper.Boxed(key, live), source, _partitions.Actor, _partitions.IsTraced, permits, priority, timeout), cancellationToken, live);
    }

    /// <summary>The counts of every live partition, read in one pass.</summary>
    /// <param name="cancellationToken">Unused: the counts are read without waiting; kept for callers that pass one.</param>
    /// <returns>Each live partition's counts, by key.</returns>
    public Task<IReadOnlyDictionary<TKey, PartitionStatistics>> GetStatisticsAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult(_partitions.Statistics<TKey>());

    /// <summary>
    /// This limiter as a <see cref="System.Threading.RateLimiting.PartitionedRateLimiter{TResource}"/> keyed by
    /// <paramref name="keyOf"/>. <c>AttemptAcquire</c> claims from the partition's loan (its free permits, lent while
    /// nobody waits in it) with one compare-and-swap and never blocks; for a key with no live partition (never used, or
    /// dropped for idleness) it makes the partition and is granted at once, as RateLimiting's partitioned limiter grants
    /// a fresh key. It returns a failed lease with a reason phrase when the loan does not cover the permits (someone
    /// waits, they are in use, or the partition is busy), and callers such as ASP.NET Core's middleware then wait with
    /// <c>AcquireAsync</c>. Disposing the adapter leaves this limiter running.
    /// </summary>
    /// <typeparam name="TResource">What a caller is limited on (an <c>HttpContext</c>, a request message).</typeparam>
    /// <param name="keyOf">The partition key of a resource; must not return <c>null</c>.</param>
    /// <returns>The adapter.</returns>
    public System.Threading.RateLimiting.PartitionedRateLimiter<TResource> AsPartitionedRateLimiter<TResource>(Func<TResource, TKey> keyOf)
    {
        ArgumentNullException.ThrowIfNull(keyOf);
        _partitions.ThrowIfDisposed(this);
        return new PartitionedLimiterAdapter<TResource, TKey>(this, keyOf);
    }

    /// <summary>Stops every partition without waiting: waiters get <see cref="ObjectDisposedException"/>, and so does every later call.</summary>
    public void Dispose() => _partitions.Dispose();

    /// <summary>As <see cref="Dispose"/>, and completes once every partition has stopped.</summary>
    /// <returns>A task that completes when the limiter's actor has stopped.</returns>
    public ValueTask DisposeAsync() => _partitions.DisposeAsync();

    /// <summary>How many partitions were ever made.</summary>
    internal long PartitionsMade => _partitions.Made;

    /// <summary>The counts of <paramref name="key"/>'s partition; <c>null</c> when it is not live.</summary>
    internal PartitionStatistics? StatisticsOf(TKey key) => _partitions.StatisticsOf(key);

    /// <inheritdoc />
    PartitionedGatekeeper IPartitionedLimiter<TKey>.Partitions => _partitions;

    /// <inheritdoc />
    RateLimitLease IPartitionedLimiter<TKey>.Probe => ActorQueueLease.Probe;

    /// <inheritdoc />
    long IPartitionedLimiter<TKey>.AvailableIn(Partition? partition) => Math.Max(0, _partitions.Settings.MaxRunning - (partition?.Running ?? 0));

    /// <inheritdoc />
    PartitionAcquireRequest IPartitionedLimiter<TKey>.Request(TKey key, object boxed, int permitCount)
    {
        var timeout = Check(key, permitCount, waitTimeout: null, "rate-limiter", nameof(permitCount));
        return new PartitionAcquireRequest(boxed, "rate-limiter", _partitions.Actor, _partitions.IsTraced, permitCount, priority: 0, timeout);
    }

    /// <inheritdoc />
    RateLimitLease IPartitionedLimiter<TKey>.Leased(PartitionAcquireRequest request, ConcurrencyLease slot) => slot;

    /// <inheritdoc />
    RateLimitLease IPartitionedLimiter<TKey>.Failed(string reason, TimeSpan? retryAfter) => ActorQueueLease.Failed(reason);

    /// <inheritdoc />
    RateLimitLease? IPartitionedLimiter<TKey>.TryClaim(TKey key, int permitCount, out Partition? live)
    {
        Check(key, permitCount, waitTimeout: null, "rate-limiter", nameof(permitCount));
        return _partitions.TryClaim(key, permitCount, "rate-limiter", out live) is { } claimed ? claimed : null;
    }

    /// <summary>Checks the arguments and that the limiter is not disposed.</summary>
    /// <returns>The wait timeout, resolved against the limit's default.</returns>
    private TimeSpan? Check(TKey key, int permits, TimeSpan? waitTimeout, string source, string permitsName)
    {
        if (key is null)
        {
            throw new ArgumentNullException(nameof(key)); // not ThrowIfNull(object): that boxes a value-type key
        }

        ArgumentNullException.ThrowIfNull(source);
        LimitValidation.Permits(permits, Limit.MaxRunning, Name, permitsName);
        var timeout = waitTimeout is null ? Limit.WaitTimeout : LimitValidation.WaitTimeout(waitTimeout, nameof(waitTimeout));
        _partitions.ThrowIfDisposed(this);
        return timeout;
    }
}

/// <summary>The counts of one partition of a <see cref="PartitionedConcurrencyLimiter{TKey}"/>.</summary>
/// <param name="Running">Permits held now.</param>
/// <param name="Waiting">Callers waiting now.</param>
/// <param name="MaxRunning">How many permits the partition has.</param>
/// <param name="MaxQueued">How many may wait; <c>null</c> for no bound.</param>
public sealed record PartitionStatistics(int Running, int Waiting, int MaxRunning, int? MaxQueued);
