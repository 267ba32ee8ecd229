using System.Diagnostics;
using System.Globalization;
using ActorQueue.Actors;
using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Cluster;

/// <summary>
/// The model-API limit per key (an API key, a tenant) for the whole cluster: each key is a cluster model-API limit of its
/// own (calls in flight, requests per period and tokens per period, from one <see cref="ModelApiLimiterOptions"/>), with
/// its own gatekeeper in the singleton and its own agent on each node that uses it, and the promises of
/// <see cref="ClusterModelApiLimiter"/>. Get one with <see cref="ActorQueueCluster.PartitionedModelApiLimiter{TKey}"/>.
/// </summary>
/// <typeparam name="TKey">
/// The key; a partition is named by the key's string (<see cref="FormatKey"/>), so keys with the same string share one.
/// That string is not secret (it travels in cluster messages and shows in logs and actor paths; metric tags carry the limiter's name only): per API
/// key, format the key to an identifier of it, such as a hash.
/// </typeparam>
/// <remarks>
/// <para>A partition stops for idleness only <b>at rest</b>: nothing held, nobody waiting, and every rate back to full with
/// no debt (a bucket refilled, a window emptied) for <see cref="IdleTimeout"/>. Its node agents stop first, each after
/// the gatekeeper confirmed rest, and its gatekeeper after its last agent. A key used again then starts full, exactly
/// where the old partition would be; a partition that stopped with a drained bucket would hand out a fresh one early.
/// A drained key therefore lives on, on every node that used it, until its rates are full again.</para>
/// <para>Across a hand-over of the singleton each key keeps the promise of <see cref="ClusterModelApiLimiter"/>: its new
/// gatekeeper starts its rates empty and owes the newest debt a node heard of, so it never over-grants. Local actors
/// send <see cref="GatekeeperProtocol"/> messages wrapped in <see cref="ClusterPartitionMessage"/> (see <see cref="Message"/>)
/// to <see cref="Agent"/>.</para>
/// </remarks>
[DebuggerDisplay("{Name}: {PartitionCount} partition(s) on this node")]
public sealed class ClusterPartitionedModelApiLimiter<TKey> : IDisposable, IAsyncDisposable
    where TKey : notnull
{
    /// <summary>The node's parent of the partitions' agents.</summary>
    private readonly IActorRef _agents;

    /// <summary>How many partitions live on this node.</summary>
    private readonly PartitionCount _count;

    /// <summary>A key's string, which names its partition cluster-wide.</summary>
    private readonly Func<TKey, string> _format;

    /// <summary>Tells the node extension the name is free again.</summary>
    private readonly Action<object> _onDisposed;

    /// <summary>The disposal, ordered after the resizes sent before it.</summary>
    private readonly FacadeDisposal _disposal;

    internal ClusterPartitionedModelApiLimiter(string name, ModelApiLimiterOptions options, TimeSpan idleTimeout, Func<TKey, string>? format,
                                               IActorRef agents, PartitionCount count, Action<object> onDisposed)
    {
        Name = name;
        Options = options;
        IdleTimeout = idleTimeout;
        _format = format ?? DefaultFormat;
        _agents = agents;
        _count = count;
        _onDisposed = onDisposed;
        _disposal = new FacadeDisposal(agents);
    }

    /// <summary>The limiter's cluster-wide name.</summary>
    public string Name { get; }

    /// <summary>Every partition's limits, as this node created the limiter (a partition's gatekeeper takes those of the first node that reaches it).</summary>
    public ModelApiLimiterOptions Options { get; }

    /// <summary>How long a partition lives on at rest (nothing held, nobody waiting, its rates full) before it stops.</summary>
    public TimeSpan IdleTimeout { get; }

    /// <summary>How many partitions are live on this node now.</summary>
    public int PartitionCount => _count.Value;

    /// <summary>This node's parent of the partitions' agents: local actors send it <see cref="ClusterPartitionMessage"/>s.</summary>
    public IActorRef Agent => _agents;

    /// <summary>The string that names <paramref name="key"/>'s partition: the key itself for a string, invariant-culture formatting for an <see cref="IFormattable"/>, else <see cref="object.ToString"/> — or the limiter's own format.</summary>
    /// <param name="key">The key; not <c>null</c>.</param>
    /// <returns>The partition's name within the limiter.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is <c>null</c>.</exception>
    /// <exception cref="ArgumentException">The key formats to <c>null</c>.</exception>
    public string FormatKey(TKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return _format(key) ?? throw new ArgumentException($"key {key} of partitioned limiter {Name} formats to null; a partition needs a string", nameof(key));
    }

    /// <summary>Wraps <paramref name="message"/> for the agent of <paramref name="key"/>'s partition; send the result to <see cref="Agent"/>.</summary>
    /// <param name="key">The partition's key; not <c>null</c>.</param>
    /// <param name="message">A <see cref="GatekeeperProtocol"/> message: <c>Acquire</c> (with <c>Tokens</c>), <c>CancelAcquire</c>, <c>Settle</c>, <c>Release</c>, <c>ReleaseAndAcquire</c>, <c>Resize</c> or <c>GetStatus</c>.</param>
    /// <returns>The message for <see cref="Agent"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> or <paramref name="message"/> is <c>null</c>.</exception>
    public ClusterPartitionMessage Message(TKey key, object message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return new ClusterPartitionMessage(FormatKey(key), message);
    }

    /// <summary>Waits until a slot, a request and <paramref name="estimatedTokens"/> tokens of <paramref name="key"/>'s partition are all free cluster-wide, then takes them together, as <see cref="ClusterModelApiLimiter.AcquireAsync"/>.</summary>
    /// <param name="key">The partition's key; not <c>null</c>.</param>
    /// <param name="estimatedTokens">The tokens the call is expected to use; at least 1 and at most <see cref="ModelApiLimiterOptions.TokensPerPeriod"/>.</param>
    /// <param name="priority">Higher is served first within the partition; FIFO within one priority.</param>
    /// <param name="waitTimeout">How long it may wait (on this node): <c>null</c> for the options' default, <see cref="Timeout.InfiniteTimeSpan"/> for ever, zero not at all.</param>
    /// <param name="source">Who asks; shows in rejection messages.</param>
    /// <param name="cancellationToken">Withdraws the call while it waits; it then takes nothing.</param>
    /// <returns>The lease: settle it with the real token count, then dispose it.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is <c>null</c>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="estimatedTokens"/> or <paramref name="waitTimeout"/> is out of range.</exception>
    /// <exception cref="ConcurrencyLimitExceededException">The partition's queue is full, or this waiter was evicted.</exception>
    /// <exception cref="ConcurrencyWaitTimeoutException">The wait timeout passed, or a zero timeout would have had to wait.</exception>
    /// <exception cref="ObjectDisposedException">The limiter is disposed on this node.</exception>
    public ValueTask<ModelApiLease> AcquireAsync(TKey key, long estimatedTokens, int priority = 0, TimeSpan? waitTimeout = null,
                                                 string source = "unnamed", CancellationToken cancellationToken = default)
    {
        var partition = FormatKey(key);
        ArgumentNullException.ThrowIfNull(source);
        LimitValidation.EstimatedTokens(estimatedTokens, Options.TokensPerPeriod, Name, nameof(estimatedTokens));
        var timeout = waitTimeout is { } given ? ClusterArguments.WaitTimeout(given, nameof(waitTimeout)) : Options.WaitTimeout;
        _disposal.ThrowIfDisposed(this);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<ModelApiLease>(cancellationToken);
        }

        var request = Post(partition, new PermitDemand(1, estimatedTokens), priority, timeout, source);
        return LeaseOf(request.WaitAsync(cancellationToken), partition, estimatedTokens);
    }

    /// <summary>Sends a checked request for <paramref name="partition"/> to this node's agents and returns it.</summary>
    /// <exception cref="ObjectDisposedException">The limiter is disposed.</exception>
    internal ClusterAcquireRequest Post(string partition, PermitDemand demand, int priority, TimeSpan? timeout, string source, string? argumentName = null)
    {
        _disposal.ThrowIfDisposed(this);
        return PartitionRequest.Post(_agents, partition, demand, priority, timeout, source, argumentName, (_disposal, Name));
    }

    /// <summary>The partitions live on this node, with their counts.</summary>
    internal PartitionCount Partitions => _count;

    /// <summary>
    /// This limiter as a <see cref="System.Threading.RateLimiting.PartitionedRateLimiter{TResource}"/> whose permits are
    /// tokens, keyed by <paramref name="keyOf"/>, for ASP.NET Core's rate-limiting middleware on every node or Polly.
    /// <c>AcquireAsync(resource, n)</c> waits for a slot, a request and <c>n</c> tokens of the key's partition together;
    /// a full queue, an eviction or a wait timeout gives a failed lease with a reason phrase and, when the partition's
    /// rates decide it, <c>RetryAfter</c>. <c>AttemptAcquire</c> never grants (the rates are counted in the cluster
    /// singleton). <c>GetStatistics</c> reports a partition live on this node and is <c>null</c> for any other key.
    /// Disposing the adapter leaves this limiter running.
    /// </summary>
    /// <typeparam name="TResource">What a caller is limited on (an <c>HttpContext</c>, a request message).</typeparam>
    /// <param name="keyOf">The partition key of a resource; must not return <c>null</c>.</param>
    /// <returns>The adapter.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="keyOf"/> is <c>null</c>.</exception>
    /// <exception cref="ObjectDisposedException">The limiter is disposed.</exception>
    public System.Threading.RateLimiting.PartitionedRateLimiter<TResource> AsPartitionedRateLimiter<TResource>(Func<TResource, TKey> keyOf)
    {
        ArgumentNullException.ThrowIfNull(keyOf);
        _disposal.ThrowIfDisposed(this);
        return new ClusterPartitionedRateLimiter<TResource, TKey>(new ClusterPartitionedModelApiSubject<TKey>(this), keyOf);
    }

    /// <summary>Asks the gatekeeper of <paramref name="key"/>'s partition for its exact cluster-wide counts, with what its rates have left.</summary>
    /// <param name="key">The partition's key; not <c>null</c>.</param>
    /// <param name="timeout">How long to wait for the answer: more than zero and finite; 10 seconds when <c>null</c>.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The partition's counts; <see cref="ClusterLimiterStatus.RequestsAvailable"/> and <see cref="ClusterLimiterStatus.TokensAvailable"/> are set.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is <c>null</c>.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is zero, negative or infinite.</exception>
    /// <exception cref="ObjectDisposedException">The limiter is disposed on this node.</exception>
    public Task<ClusterLimiterStatus> GetStatusAsync(TKey key, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var partition = FormatKey(key);
        var wait = ClusterArguments.AskTimeout(timeout, nameof(timeout));
        _disposal.ThrowIfDisposed(this);
        return PartitionsParentAsk.Send<ClusterLimiterStatus>(_agents, Name, _disposal, new PartitionStatus(partition), wait, cancellationToken); // one per call: failed at once if it reaches no parent
    }

    /// <summary>
    /// The counts of every partition live on this node, in one call, by the key's string (<see cref="FormatKey"/>): the
    /// cluster-wide counts as of each partition's last reply from its gatekeeper, and this node's exact ones.
    /// </summary>
    /// <param name="timeout">How long to wait for the answer: more than zero and finite; 10 seconds when <c>null</c>.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The statistics by partition.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is zero, negative or infinite.</exception>
    /// <exception cref="ObjectDisposedException">The limiter is disposed.</exception>
    public async Task<IReadOnlyDictionary<string, ClusterPartitionStatistics>> GetStatisticsAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var wait = ClusterArguments.AskTimeout(timeout, nameof(timeout));
        _disposal.ThrowIfDisposed(this);
        return await PartitionsParentAsk.Send<Dictionary<string, ClusterPartitionStatistics>>(_agents, Name, _disposal, new AllPartitionStatistics(), wait, cancellationToken)
                            .ConfigureAwait(false);
    }

    /// <summary>
    /// Sets new bounds on the calls in flight and waiting of <paramref name="key"/>'s partition, cluster-wide, as
    /// <see cref="ClusterPartitionedLimiter.Resize"/> does (its rates stay). It lasts while the partition lives and
    /// survives a hand-over; once the partition has stopped for idleness everywhere, the key starts again at <see cref="Options"/>.
    /// </summary>
    /// <param name="key">The partition's key; not <c>null</c>.</param>
    /// <param name="maxConcurrent">The new bound on calls in flight; at least 1; <c>null</c> leaves it.</param>
    /// <param name="maxQueued">The new bound on waiters; at least 0; <c>null</c> leaves it.</param>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is <c>null</c>.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A bound is out of range.</exception>
    /// <exception cref="ObjectDisposedException">The limiter is disposed.</exception>
    public void Resize(TKey key, int? maxConcurrent = null, int? maxQueued = null)
    {
        var partition = FormatKey(key);
        PartitionResize.Send(_disposal, this, partition, maxConcurrent, maxQueued, nameof(maxConcurrent));
    }

    /// <summary>
    /// As <see cref="Resize"/>, with a definite answer, as <see cref="ClusterConcurrencyLimiter.ResizeAsync"/> gives: the
    /// task completes once this node heard the partition's gatekeeper apply it, and fails with
    /// <see cref="ObjectDisposedException"/> if the limiter is disposed first (the resize was sent; the incarnation it
    /// reached applies it unless it stops before taking it).
    /// </summary>
    /// <param name="key">The partition's key; not <c>null</c>.</param>
    /// <param name="maxConcurrent">The new bound on calls in flight; at least 1; <c>null</c> leaves it.</param>
    /// <param name="maxQueued">The new bound on waiters; at least 0; <c>null</c> leaves it.</param>
    /// <param name="cancellationToken">
    /// Cancelled before the call (after the key and bounds are checked), nothing is sent and the task is cancelled
    /// (<see cref="OperationCanceledException"/>); cancelled later, it stops waiting for the answer, and the resize goes on.
    /// </param>
    /// <returns>Completes when the resize is heard applied; fails if the limiter is disposed first.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is <c>null</c>.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A bound is out of range.</exception>
    /// <exception cref="ObjectDisposedException">The limiter is disposed.</exception>
    /// <exception cref="OperationCanceledException">The token was cancelled before the call: the resize was not sent.</exception>
    public Task ResizeAsync(TKey key, int? maxConcurrent = null, int? maxQueued = null, CancellationToken cancellationToken = default)
    {
        var partition = FormatKey(key);
        return PartitionResize.SendAwaited(_disposal, this, Name, partition, maxConcurrent, maxQueued, nameof(maxConcurrent), cancellationToken);
    }

    /// <summary>As <see cref="DisposeAsync"/>, without waiting for the agents to stop.</summary>
    public void Dispose() => _ = _disposal.Stop(this, _onDisposed);

    /// <summary>Stops this node's agents: their waiters get <see cref="ObjectDisposedException"/>, the gatekeepers free the node's slots. The partitions live on for the other nodes.</summary>
    /// <returns>A task that completes when the agents have stopped.</returns>
    public ValueTask DisposeAsync() => new(_disposal.Stop(this, _onDisposed));

    /// <summary>The limiter's name, options, idle timeout and key type, as error messages show it.</summary>
    /// <returns>The description.</returns>
    public override string ToString() => $"{Name}: {Options}, idleTimeout={IdleTimeout}, key type {typeof(TKey).Name}";

    private static string DefaultFormat(TKey key) => key switch
    {
        string text => text,
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => key.ToString()!,
    };

    /// <summary>
    /// The call's lease, whose release and settle go to the partition's agent through the parent, in order: the agent
    /// holds the lease until the release, so neither can reach an agent that stopped for idleness.
    /// </summary>
    private async ValueTask<ModelApiLease> LeaseOf(ValueTask<ConcurrencyLease> grant, string partition, long estimatedTokens) =>
        LeaseOf(await grant.ConfigureAwait(false), partition, estimatedTokens);

    /// <summary>The call's lease over <paramref name="slot"/>, granted by <paramref name="partition"/>: see the overload.</summary>
    internal ModelApiLease LeaseOf(ConcurrencyLease slot, string partition, long estimatedTokens)
    {
        var route = new PartitionLeaseRoute(_agents, partition);
        return new ModelApiLease(new ConcurrencyLease(route, slot.LeaseId, slot.Source, slot.Permits), estimatedTokens, route, Name);
    }
}

/// <summary>Gives a partition lease back and settles it through the partitions' parent, keyed, so both reach the agent that granted it.</summary>
internal sealed class PartitionLeaseRoute(IActorRef agents, string partition) : ILeaseReleaser, ITokenSettler
{
    /// <inheritdoc />
    public void Release(ConcurrencyLease lease) => agents.Tell(new ClusterPartitionMessage(partition, new ReleaseAgentLease(lease.LeaseId)), ActorRefs.NoSender);

    /// <inheritdoc />
    public void Settle(SettleTokens message) => agents.Tell(new ClusterPartitionMessage(partition, message), ActorRefs.NoSender);
}

/// <summary>A request for one partition, sent through the partitions' parent to the partition's agent (made if it is not live).</summary>
internal static class PartitionRequest
{
    /// <summary>Sends a checked request for <paramref name="partition"/> to a node's <paramref name="agents"/> and returns it (<paramref name="sender"/>: <see cref="ClusterAcquireRequest.SentBy"/>).</summary>
    public static ClusterAcquireRequest Post(IActorRef agents, string partition, PermitDemand demand, int priority, TimeSpan? timeout, string source, string? argumentName,
                                             (FacadeDisposal Disposal, string Name) sender)
    {
        var request = new ClusterAcquireRequest(source, demand, priority, timeout, agents) { Partition = partition, ArgumentName = argumentName, SentBy = sender };
        agents.Tell(request, ActorRefs.NoSender);
        return request;
    }
}

/// <summary>
/// A resize of one partition, checked and sent through the partitions' parent to the partition's agent and on to its
/// gatekeeper, ahead of the facade's stop if a dispose races it (<see cref="FacadeDisposal.Send"/>). The bounds are
/// checked first, then the disposal, as a whole limiter's resize does (checked after it, a bad bound of a disposed
/// partitioned limiter was an <see cref="ObjectDisposedException"/>: Review/PartitionResizeArgumentsRound40Tests).
/// </summary>
internal static class PartitionResize
{
    /// <exception cref="ArgumentOutOfRangeException">A bound is out of range.</exception>
    /// <exception cref="ObjectDisposedException">Disposal of <paramref name="facade"/> has begun.</exception>
    public static void Send(FacadeDisposal disposal, object facade, string partition, int? maxRunning, int? maxQueued, string maxRunningName) =>
        disposal.Send(facade, new ClusterPartitionMessage(partition, ClusterArguments.Resize(maxRunning, maxQueued, maxRunningName)));

    /// <summary>As <see cref="Send"/>, for a caller that awaits the answer (<see cref="AwaitedResize"/>, routed to the partition's agent).</summary>
    /// <returns>Completes once the node heard the resize applied; fails if the limiter is disposed first.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A bound is out of range.</exception>
    /// <exception cref="ObjectDisposedException">Disposal of <paramref name="facade"/> has begun.</exception>
    public static Task SendAwaited(FacadeDisposal disposal, object facade, string name, string partition, int? maxRunning, int? maxQueued, string maxRunningName,
                                   CancellationToken cancellationToken) =>
        ClusterArguments.AwaitResize(disposal, facade, PartitionAgentsActor.DisplayName(name, partition), ClusterArguments.Resize(maxRunning, maxQueued, maxRunningName),
            awaited => new ClusterPartitionMessage(partition, awaited), cancellationToken);
}
