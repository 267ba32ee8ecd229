using System.Diagnostics;
using System.Text.Json;
using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Cluster;

/// <summary>
/// A node's producer handle on a distributed work queue: one queue per name across the cluster, its router a
/// cluster singleton, its workers on every worker node (<see cref="ActorQueueCluster.RegisterWorkers"/>).
/// Get one with <see cref="ActorQueueCluster.WorkQueue"/>.
/// </summary>
/// <remarks>
/// <para>Delivery is at-least-once: an item in flight on a node that is lost is run again elsewhere, and if the
/// router's own node is lost this handle re-announces every item without a result to the new router. Every accepted
/// item therefore ends with a result: processed, or failed (its handler threw, or it was lost with
/// <c>max-deliveries</c> workers). A second result for the same item is counted in
/// <see cref="DistributedQueueMetrics.Duplicates"/>; handlers should be idempotent.</para>
/// <para>Items and results cross the network as System.Text.Json text (the options given at creation, the same on
/// every node); the envelopes around them use ActorQueue's own binary wire format (<see cref="ClusterMessageSerializer"/>).</para>
/// <para>A put made under an <see cref="Activity"/> (with a listener on the <c>ActorQueue</c> source) carries its trace
/// context to the worker node, which runs the item under a <c>process {queue}</c> consumer span, child of the put's.</para>
/// <para>With <see cref="ClusterNodeOptions.QueueDurability"/> the router journals the items: a put is acknowledged
/// only once written, and a router started after the loss of every node runs every accepted item that had not
/// finished.</para>
/// </remarks>
/// <typeparam name="TItem">The item type.</typeparam>
/// <typeparam name="TResult">The workers' result type.</typeparam>
[DebuggerDisplay("{Name}: {Metrics}")]
public sealed class DistributedWorkQueue<TItem, TResult> : IAsyncDisposable
{
    /// <summary>The most items <see cref="BatchProcessAsync"/> sends in one message.</summary>
    private const int MaxBatchChunk = 64;

    /// <summary>Turns items and results into JSON text and back.</summary>
    private readonly ItemCodec<TItem, TResult> _codec;

    /// <summary>The producer agent's counters, read by <see cref="Metrics"/>.</summary>
    private readonly ProducerCounts _counts = new();

    /// <summary>This handle's producer agent (<c>null</c> only in the finalizer of a handle whose constructor threw).</summary>
    private readonly IActorRef _producer;

    /// <summary>1 once disposal has begun.</summary>
    private int _disposed;

    internal DistributedWorkQueue(ActorQueueCluster cluster, string name, int capacity, TimeSpan putTimeout, JsonSerializerOptions? json)
    {
        Name = name;
        Capacity = capacity;
        PutTimeout = putTimeout;
        _codec = new ItemCodec<TItem, TResult>(json);
        _producer = cluster.StartProducer(name, capacity, _counts);
    }

    /// <summary>The queue's cluster-wide name.</summary>
    public string Name { get; }

    /// <summary>How many items the router holds waiting for a worker.</summary>
    public int Capacity { get; }

    /// <summary>How long a put waits for space by default.</summary>
    public TimeSpan PutTimeout { get; }

    /// <summary>What happened to the items put through this handle.</summary>
    public DistributedQueueMetrics Metrics => _counts.Snapshot();

    /// <summary>Puts an item, waiting for space up to <paramref name="timeout"/>.</summary>
    /// <param name="item">The item.</param>
    /// <param name="timeout">How long to wait for space; <see cref="PutTimeout"/> when <c>null</c>, <see cref="Timeout.InfiniteTimeSpan"/> to wait until there is space.</param>
    /// <param name="cancellationToken">
    /// Checked before the put is sent; cancelled while the put waits for space, it withdraws the put (the router drops it,
    /// it never runs, <see cref="DistributedQueueMetrics.Withdrawn"/> counts it) and this throws
    /// <see cref="OperationCanceledException"/>. A put the queue accepted before the withdrawal reached it is returned as
    /// usual: if the withdrawal reached the router first, its <see cref="DistributedItem{TResult}.Completion"/> ends withdrawn
    /// when no worker took it; if the acceptance reached this handle first, the cancellation is too late and the item
    /// runs — withdraw it with <see cref="TryWithdrawAsync"/>.
    /// </param>
    /// <returns>The accepted item with the task for its result, or <c>null</c> on backpressure (not taken).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative and not infinite.</exception>
    /// <exception cref="ObjectDisposedException">The handle is disposed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled before the queue accepted the put: it is not taken.</exception>
    public async Task<DistributedItem<TResult>?> SubmitAsync(TItem item, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var wait = timeout is { } given ? QueueArguments.PutTimeout(given, nameof(timeout)) : PutTimeout;
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        cancellationToken.ThrowIfCancellationRequested();
        var put = new PutItem(_codec.EncodeItem(item), wait == Timeout.InfiniteTimeSpan ? -1 : (long)Math.Ceiling(wait.TotalMilliseconds), ItemTrace.Capture());
        _producer.Tell(put, ActorRefs.NoSender);

        // Registered after the put is told: the producer takes the put before its cancellation. A token that cannot be
        // cancelled (the default) costs no CancelPut per put.
        var registration = cancellationToken.CanBeCanceled
            ? cancellationToken.Register(static state => ((CancelPut)state!).Producer.Tell(state, ActorRefs.NoSender), new CancelPut(_producer, put))
            : default;
        bool accepted;
        try
        {
            accepted = await put.Accepted.Task.ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (put.Accepted.Task.IsCanceled)
        {
            throw new OperationCanceledException($"The put to distributed queue '{Name}' was withdrawn before the queue accepted it; it is not taken.", cancellationToken);
        }
        finally
        {
            registration.Unregister(); // not Dispose: that would wait for a callback running on the cancelling thread
        }

        return accepted ? new DistributedItem<TResult>(put.ItemId, ResultAsync(put)) { Owner = this, Put = put } : null;
    }

    /// <summary>
    /// Withdraws an item this handle submitted, if no worker runs it: the router takes it out of its queue (an item a
    /// leaving worker handed back included), it never runs, and its <see cref="DistributedItem{TResult}.Completion"/>
    /// ends <see cref="ItemResult{TResult}.Withdrawn"/> (counted in <see cref="DistributedQueueMetrics.Withdrawn"/>).
    /// </summary>
    /// <remarks>
    /// <para>An item a worker runs is not stopped: the answer is <c>false</c> and it runs to its end as usual. The
    /// withdrawal still stands: if that worker is lost with it (its node leaves or crashes, its registration is disposed),
    /// the item is withdrawn instead of handed to another worker, so a withdrawn item never starts again. It also stands
    /// across a move of the router: this handle tells the next router, which withdraws the item when it is announced.</para>
    /// <para>A durable router (<see cref="ClusterNodeOptions.QueueDurability"/>) journals the withdrawal as the item's end
    /// and answers once it is written: a router started later does not run it again.</para>
    /// <para>After the router moved, an item a worker of the previous router still runs cannot be told from a queued one:
    /// it is withdrawn, and the result that worker then sends counts in <see cref="DistributedQueueMetrics.Duplicates"/>.</para>
    /// </remarks>
    /// <param name="item">An item <see cref="SubmitAsync"/> of this handle returned.</param>
    /// <param name="cancellationToken">Stops waiting for the router's answer; the withdrawal, once sent, stands.</param>
    /// <returns>
    /// <c>true</c> when the item is withdrawn (now or before); <c>false</c> when a worker runs it or it already has
    /// another result.
    /// </returns>
    /// <exception cref="ArgumentNullException"><paramref name="item"/> is <c>null</c>.</exception>
    /// <exception cref="ArgumentException"><paramref name="item"/> was not submitted through this handle.</exception>
    /// <exception cref="ObjectDisposedException">The handle is disposed.</exception>
    public async Task<bool> TryWithdrawAsync(DistributedItem<TResult> item, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(item);
        if (!ReferenceEquals(item.Owner, this) || item.Put is not { } put)
        {
            throw new ArgumentException($"Item {item.ItemId} was not submitted through this handle of queue '{Name}'.", nameof(item));
        }

        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (put.Done.Task.IsCompleted)
        {
            return EndedWithdrawn(put);
        }

        var request = new WithdrawRequest(put.ItemId);
        _producer.Tell(request, ActorRefs.NoSender);
        var withdrawn = await request.Answer.Task.WaitAsync(cancellationToken).ConfigureAwait(false);

        // An answer of an earlier request may have ended the item just before this one was handled.
        return withdrawn || EndedWithdrawn(put);
    }

    /// <summary>Whether <paramref name="put"/>'s item has ended, withdrawn (read without waiting: only a completed task is read).</summary>
    private static bool EndedWithdrawn(PutItem put) => put.Done.Task is { IsCompletedSuccessfully: true } done && done.GetAwaiter().GetResult().Withdrawn;

    /// <summary>Puts an item, waiting for space up to <see cref="PutTimeout"/>; its result shows only in <see cref="Metrics"/>.</summary>
    /// <param name="item">The item.</param>
    /// <param name="cancellationToken">Checked before the put is sent; withdraws the put while it waits for space (as <see cref="SubmitAsync"/>).</param>
    /// <returns><c>true</c> when accepted; <c>false</c> on backpressure.</returns>
    public async Task<bool> PutAsync(TItem item, CancellationToken cancellationToken = default) =>
        await SubmitAsync(item, timeout: null, cancellationToken).ConfigureAwait(false) is not null;

    /// <summary>
    /// Processes a batch: puts every item (waiting for space, never dropping one) and waits until each has a result.
    /// </summary>
    /// <param name="items">The items, enumerated once, as space frees up.</param>
    /// <param name="cancellationToken">Stops putting further items and stops waiting (items already put still run).</param>
    /// <returns>The results, in the order of <paramref name="items"/>.</returns>
    public async Task<IReadOnlyList<ItemResult<TResult>>> BatchProcessAsync(IEnumerable<TItem> items, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(items);
        var results = new List<Task<ItemResult<TResult>>>();

        // Puts go in chunks of up to 64 items, one message each, and are pipelined: up to Capacity items travel
        // unanswered, so the batch is not paced by network round trips, while the router's backpressure still bounds
        // how far the enumeration runs ahead.
        var chunkSize = Math.Min(Capacity, MaxBatchChunk);
        var chunk = new List<PutItem>(chunkSize);
        var unanswered = new Queue<Task<bool>>();
        var trace = ItemTrace.Capture(); // the batch's items are all put under the caller's activity
        foreach (var item in items)
        {
            cancellationToken.ThrowIfCancellationRequested();
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            var put = new PutItem(_codec.EncodeItem(item), -1, trace);
            chunk.Add(put);
            results.Add(ResultAsync(put));
            unanswered.Enqueue(put.Accepted.Task);
            if (chunk.Count == chunkSize)
            {
                _producer.Tell(new PutBatch(chunk), ActorRefs.NoSender);
                chunk = new List<PutItem>(chunkSize);
            }

            while (unanswered.Count > Capacity + chunkSize)
            {
                await unanswered.Dequeue().ConfigureAwait(false);
            }
        }

        if (chunk.Count > 0)
        {
            _producer.Tell(new PutBatch(chunk), ActorRefs.NoSender);
        }

        return await Task.WhenAll(results).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Completes when every item put through this handle has a result.</summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>A task that completes when nothing is outstanding.</returns>
    public Task JoinAsync(CancellationToken cancellationToken = default)
    {
        var join = new JoinProducer();
        _producer.Tell(join, ActorRefs.NoSender);
        return join.Completion.Task.WaitAsync(cancellationToken);
    }

    /// <summary>Asks the queue's router for its counts (queued, in flight, workers across the cluster).</summary>
    /// <param name="timeout">How long to wait for the answer; 10 seconds when <c>null</c>.</param>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The router's counts.</returns>
    public Task<DistributedQueueStatus> GetStatusAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        _producer.Ask<DistributedQueueStatus>(GetQueueStatus.Instance, timeout ?? TimeSpan.FromSeconds(10), cancellationToken);

    /// <summary>
    /// Stops this handle's producer agent. Items still without a result fail here with <see cref="ObjectDisposedException"/>
    /// (the cluster may still run them). Call <see cref="JoinAsync"/> first to wait for them.
    /// </summary>
    /// <returns>A task that completes when the agent has stopped.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            GC.SuppressFinalize(this);
            await _producer.GracefulStop(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A handle dropped without DisposeAsync stops its producer agent, so a forgotten handle leaks no actor. One whose
    /// constructor threw (its node's system terminated) is finalized too, without a producer: an exception here would end
    /// the process (<c>Review/RecoveryRacesReviewTests</c>).
    /// </summary>
    ~DistributedWorkQueue()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0 && _producer is not null)
        {
            _producer.Tell(PoisonPill.Instance, ActorRefs.NoSender);
        }
    }

    private async Task<ItemResult<TResult>> ResultAsync(PutItem put)
    {
        var done = await put.Done.Task.ConfigureAwait(false);
        var result = done.Succeeded ? _codec.DecodeResult(done.ResultPayload) : default;
        return new ItemResult<TResult>(done.ItemId, done.Succeeded, result, done.Error, done.Node, done.Deliveries) { Withdrawn = done.Withdrawn };
    }
}
