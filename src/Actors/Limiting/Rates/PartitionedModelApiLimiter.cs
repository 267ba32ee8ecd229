using System.Threading.RateLimiting;
using System.Diagnostics;
using ActorQueue.Runtime;
using ActorQueue.Telemetry;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// The model-API limit per key (an API key, a tenant): each key gets a partition with the same
/// <see cref="ModelApiLimiterOptions"/> (its own slots, requests and tokens), made on the key's first call, inside the
/// limiter's one actor. A partition is dropped once it has held nothing, had nobody waiting and had its rates back at
/// rest (buckets full and out of debt, windows empty) for <see cref="IdleTimeout"/>, so a key that comes back later
/// starts exactly where it would have been.
/// </summary>
/// <typeparam name="TKey">The key; compared with its <see cref="object.Equals(object)"/>.</typeparam>
[DebuggerDisplay("{Name ?? \"unnamed\"}: {PartitionCount} partitions")]
public sealed class PartitionedModelApiLimiter<TKey> : IDisposable, IAsyncDisposable, IPartitionedLimiter<TKey>
    where TKey : notnull
{
    /// <summary>The actor and the live partitions.</summary>
    private readonly PartitionedGatekeeper _partitions;

    /// <summary>Creates the limiter and its parent actor; partitions come with their first call.</summary>
    /// <param name="options">Every partition's limits, queue bound, wait timeout and clock.</param>
    /// <param name="idleTimeout">How long a partition stays idle (and at rest) before it is stopped; above zero.</param>
    /// <param name="name">A name for traces, metrics, logs and rejection messages (every partition's).</param>
    /// <param name="tracer">Where wait spans go; the library's <see cref="ActorQueueTelemetry.Source"/> when <c>null</c>.</param>
    /// <param name="system">The actor system; the embedded default when <c>null</c>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="idleTimeout"/> is zero, negative or infinite.</exception>
    public PartitionedModelApiLimiter(ModelApiLimiterOptions options, TimeSpan idleTimeout, string? name = null,
                                      ActivitySource? tracer = null, ActorSystem? system = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        RateGatekeeper.Check(options);
        Options = options;
        IdleTimeout = LimitValidation.Period(idleTimeout, nameof(idleTimeout));
        Name = name;
        var runtime = ActorQueueRuntime.Resolve(system);
        var gatekeeper = RateGatekeeper.Settings(options, name, name ?? runtime.Settings.DefaultLimiterName, new LimiterCounts());
        _partitions = new PartitionedGatekeeper(gatekeeper, idleTimeout, "partitioned-model-api-limiter", tracer, runtime);
    }

    /// <summary>The limiter's name; <c>null</c> when unnamed.</summary>
    public string? Name { get; }

    /// <summary>Every partition's limits.</summary>
    public ModelApiLimiterOptions Options { get; }

    /// <summary>How long a partition stays idle and at rest before it is stopped.</summary>
    public TimeSpan IdleTimeout { get; }

    /// <summary>How many partitions are live now.</summary>
    public int PartitionCount => _partitions.Count;

    /// <summary>Takes a slot, a request and <paramref name="estimatedTokens"/> tokens of <paramref name="key"/>'s partition, as <see cref="ModelApiLimiter.AcquireAsync"/>.</summary>
    /// <param name="key">The partition's key; not <c>null</c>.</param>
    /// <param name="estimatedTokens">The tokens the call is expected to use; at least 1 and at most <see cref="ModelApiLimiterOptions.TokensPerPeriod"/>.</param>
    /// <param name="priority">Higher is served first within the partition; FIFO within one priority.</param>
    /// <param name="waitTimeout">How long it may wait: <c>null</c> for the options' default, <see cref="Timeout.InfiniteTimeSpan"/> for ever, zero not at all.</param>
    /// <param name="source">Who asks; shows in traces and rejection messages.</param>
    /// <param name="cancellationToken">Withdraws the call while it waits; it then takes nothing.</param>
    /// <returns>The lease: settle it with the real token count, then dispose it.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is <c>null</c>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="estimatedTokens"/> or <paramref name="waitTimeout"/> is out of range.</exception>
    /// <exception cref="ConcurrencyLimitExceededException">The partition's queue is full, or this waiter was evicted.</exception>
    /// <exception cref="ConcurrencyWaitTimeoutException">The wait timeout passed, or a zero timeout would have had to wait.</exception>
    /// <exception cref="ObjectDisposedException">The limiter is disposed.</exception>
    public ValueTask<ModelApiLease> AcquireAsync(TKey key, long estimatedTokens, int priority = 0, TimeSpan? waitTimeout = null,
                                                 string source = "unnamed", CancellationToken cancellationToken = default)
    {
        var request = Request(key, estimatedTokens, priority, waitTimeout, source);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<ModelApiLease>(cancellationToken);
        }

        return ModelApiLimiter.LeaseOf(request, Send(request, cancellationToken), Name);
    }

    /// <summary>The counts of every live partition, read in one pass.</summary>
    /// <returns>Each live partition's calls in flight and waiting, by key.</returns>
    public IReadOnlyDictionary<TKey, PartitionStatistics> GetStatistics() => _partitions.Statistics<TKey>();

    /// <summary>
    /// This limiter as a <see cref="System.Threading.RateLimiting.PartitionedRateLimiter{TResource}"/> whose permits are
    /// tokens, keyed by <paramref name="keyOf"/>. <c>AttemptAcquire</c> never blocks: it grants a call (a slot, a request
    /// and the permits as tokens, the lease <c>AcquireAsync</c> gets when served at once) when the key's partition is free
    /// this instant (its turn not taken), nobody waits in it and its slots and rates allow the call now, making the
    /// partition for a key with none live; else it fails with a reason phrase and, when the rates decided,
    /// <c>RetryAfter</c> (a zero-permit probe says whether a call of the key would be granted now, as its statistics'
    /// available tokens do). <c>AcquireAsync</c> waits in the partition's queue, and a rejection carries a reason phrase
    /// and, when a rate decides, <c>RetryAfter</c>. Disposing the adapter leaves this limiter running.
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

    /// <summary>Checks the arguments and makes the request.</summary>
    internal RatePartitionAcquireRequest Request(TKey key, long estimatedTokens, int priority, TimeSpan? waitTimeout, string source,
                                                 string tokensName = "estimatedTokens")
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(source);
        LimitValidation.EstimatedTokens(estimatedTokens, Options.TokensPerPeriod, Name, tokensName);
        var timeout = waitTimeout is null ? Options.WaitTimeout : LimitValidation.WaitTimeout(waitTimeout, nameof(waitTimeout));
        _partitions.ThrowIfDisposed(this);
        return new RatePartitionAcquireRequest(key, source, _partitions.Actor, _partitions.IsTraced, estimatedTokens, priority, timeout);
    }

    /// <summary>Runs <paramref name="request"/> in its partition's turn (or sends it to the actor, which makes the partition) and awaits its grant, tracing a real wait.</summary>
    internal ValueTask<ConcurrencyLease> Send(RatePartitionAcquireRequest request, CancellationToken cancellationToken) =>
        _partitions.Send(request, cancellationToken);

    /// <inheritdoc />
    PartitionedGatekeeper IPartitionedLimiter<TKey>.Partitions => _partitions;

    /// <inheritdoc />
    RateLimitLease IPartitionedLimiter<TKey>.Probe => RateLease.Probe;

    /// <inheritdoc />
    /// <remarks>Tokens, as its adapter's permits are: a fresh partition's buckets or windows are full.</remarks>
    long IPartitionedLimiter<TKey>.AvailableIn(Partition? partition) => partition?.AvailableTokens ?? Options.TokensPerPeriod;

    /// <inheritdoc />
    PartitionAcquireRequest IPartitionedLimiter<TKey>.Request(TKey key, object boxed, int permitCount) =>
        Request(key, permitCount, priority: 0, waitTimeout: null, source: "rate-limiter", tokensName: nameof(permitCount));

    /// <inheritdoc />
    RateLimitLease IPartitionedLimiter<TKey>.Leased(PartitionAcquireRequest request, ConcurrencyLease slot) =>
        new RateLease(ModelApiLimiter.LeaseOf(request, slot, Name));

    /// <inheritdoc />
    /// <remarks>A partition with rates lends nothing: its attempts run in its turn (<see cref="PartitionedGatekeeper.TryAttempt"/>). The tokens and the disposal are still checked, as a request's are.</remarks>
    RateLimitLease? IPartitionedLimiter<TKey>.TryClaim(TKey key, int permitCount, out Partition? live)
    {
        ArgumentNullException.ThrowIfNull(key);
        LimitValidation.EstimatedTokens(permitCount, Options.TokensPerPeriod, Name, nameof(permitCount));
        _partitions.ThrowIfDisposed(this);
        live = null;
        return null;
    }

    /// <inheritdoc />
    RateLimitLease IPartitionedLimiter<TKey>.Failed(string reason, TimeSpan? retryAfter) => RateLease.Failed(reason, retryAfter);
}
