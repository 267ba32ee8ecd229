using ActorQueue.Runtime;
using ActorQueue.Telemetry;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Cluster;

/// <summary>
/// A distributed queue's producer agent on one node. It keeps every item it put until the item's result comes
/// back, so when the router moves to another node it re-announces them to the new router: an accepted item is
/// processed or reported failed even if the router's node crashes.
/// </summary>
internal sealed partial class DistributedProducerActor : ReceiveActor, IWithTimers
{
    /// <summary>The queue's name.</summary>
    private readonly string _name;

    /// <summary>The queue's capacity, told to the router with every put.</summary>
    private readonly int _capacity;

    /// <summary>The metric tag naming the queue.</summary>
    private readonly KeyValuePair<string, object?> _metricTag;

    /// <summary>Where a metrics listener that throws is reported (inside a message, it would restart the producer).</summary>
    private readonly ListenerFailureLog _listenerFailures;

    /// <summary>The counters the facade reads.</summary>
    private readonly ProducerCounts _counts;

    /// <summary>What the producer owes its callers; kept across a restart (<see cref="ProducerBook"/>).</summary>
    private readonly ProducerBook _book;

    /// <summary>How often to say hello again while items are outstanding and no router answers.</summary>
    private readonly TimeSpan _helloInterval;

    public DistributedProducerActor(string name, int capacity, ProducerBook book, ProducerCounts counts, TimeSpan helloInterval)
    {
        _helloInterval = helloInterval;
        _name = name;
        _capacity = capacity;
        _metricTag = new(ActorQueueTelemetry.QueueNameTag, name);
        _listenerFailures = new ListenerFailureLog(Akka.Event.Logging.GetLogger(Context.System, this), name);
        _book = book;
        _counts = counts;

        Receive<PutItem>(HandlePut);
        Receive<PutBatch>(HandlePutBatch);
        Receive<JoinProducer>(join =>
        {
            if (_book.Outstanding.Count == 0)
            {
                join.Completion.TrySetResult();
            }
            else
            {
                _book.Joiners.Add(join.Completion);
            }
        });
        Receive<EnqueueAccepted>(HandleAccepted);
        Receive<EnqueueFull>(HandleFull);
        Receive<ItemDone>(HandleDone);
        Receive<WithdrawRequest>(HandleWithdrawRequest);
        Receive<WithdrawAnswer>(HandleWithdrawAnswer);
        Receive<CancelPut>(HandleCancelPut);
        Receive<RecoverQueue>(message => SingletonBinding.Check(Context, message, HandleRecover));
        Receive<CheckedRecovery<RecoverQueue>>(message => HandleRecover(message.Request));
        Receive<HelloTick>(_ => HelloIfUnanswered());
        Receive<Terminated>(HandleTerminated);
        Receive<GetQueueStatus>(message => _book.Router.Send(message, Sender));
    }

    /// <inheritdoc />
    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>The props of one producer: its book is made here, once, and every instance of the actor shares it (use the props once).</summary>
    public static Props Props(string name, int capacity, IActorRef hubProxy, ProducerCounts counts, TimeSpan helloInterval)
    {
        var book = new ProducerBook(new SingletonLink(hubProxy, message => new QueueEnvelope(name, capacity, message)));
        return Akka.Actor.Props.Create(() => new DistributedProducerActor(name, capacity, book, counts, helloInterval));
    }

    /// <inheritdoc />
    protected override void PreStart() => Timers.StartPeriodicTimer(HelloTick.Instance, HelloTick.Instance, _helloInterval);

    /// <summary>
    /// A handler threw: the supervisor restarts the producer. Its book stays (nothing is failed, ids go on, it follows
    /// the same router); only the message it failed on is lost to it. Of a put or batch, what was not registered yet is
    /// failed with the reason (never sent, so it never runs); what was registered is in the book and sent again after
    /// the restart. A join is failed with the reason.
    /// </summary>
    protected override void PreRestart(Exception reason, object message)
    {
        // The supervisor logs the exception itself.
        Context.GetLogger().Warning("Distributed queue producer {0} failed on {1}; it restarts with its {2} outstanding item(s)",
            _name, message?.GetType().Name ?? "(no message)", _book.Outstanding.Count);
        var failure = new InvalidOperationException($"The distributed queue producer of '{_name}' failed handling this request: {reason.Message}", reason);
        IReadOnlyList<PutItem> puts = message switch { PutItem one => [one], PutBatch batch => batch.Items, _ => [] };
        foreach (var put in puts)
        {
            if (put is not null && put.ItemId == 0)
            {
                put.Accepted.TrySetException(failure);
                put.Done.TrySetException(failure);
            }
        }

        (message as JoinProducer)?.Completion.TrySetException(failure);
        (message as WithdrawRequest)?.Answer.TrySetException(failure);
        PublishOutstanding(); // the book as it is: no PostStop, which would fail every outstanding item
    }

    /// <summary>
    /// After a restart: watch the followed router again (harmless if the watch survived) and send every item not yet
    /// acknowledged once more — one registered by the message that failed, or one whose answer the failure overtook. The
    /// router takes an item it knows only once (it acknowledges it again); an item whose result is on its way may run
    /// again, as after a hand-over.
    /// </summary>
    protected override void PostRestart(Exception reason)
    {
        base.PostRestart(reason);
        if (_book.Router.Current is { } current)
        {
            Context.Watch(current);
        }

        foreach (var id in _book.Outstanding.Keys.Order())
        {
            if (!_book.Outstanding[id].Accepted.Task.IsCompleted)
            {
                SendPut(_book.Outstanding[id]);
            }
        }
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        var disposed = new ObjectDisposedException(nameof(DistributedWorkQueue<object, object>), "The distributed queue handle has been disposed; the item's result can no longer be reported here.");
        foreach (var put in _book.Outstanding.Values)
        {
            put.Accepted.TrySetException(disposed);
            put.Done.TrySetException(disposed);
            put.AnswerWithdrawals(disposed);
        }

        _book.Outstanding.Clear();
        foreach (var joiner in _book.Joiners)
        {
            joiner.TrySetException(disposed);
        }

        base.PostStop();
    }

    private void HandlePut(PutItem put)
    {
        Register(put);
        PublishOutstanding();
        SendPut(put);
    }

    /// <summary>Sends one registered put to the router, waiting for space up to its timeout.</summary>
    private void SendPut(PutItem put)
    {
        put.Offered = _book.Router.Current is not null;
        Send(new RemoteEnqueue(_book.Router.Epoch, [put.ItemId], [put.Payload], put.TimeoutMs, _capacity) { Traces = put.Trace is null ? [] : [put.Trace] });
    }

    /// <summary>A chunk of a batch: one message to the router for all of it, each item waiting for space as long as it takes.</summary>
    private void HandlePutBatch(PutBatch batch)
    {
        var ids = new long[batch.Items.Count];
        var payloads = new string[batch.Items.Count];
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = Register(batch.Items[i]);
            payloads[i] = batch.Items[i].Payload;
            batch.Items[i].Offered = _book.Router.Current is not null;
        }

        PublishOutstanding();
        Send(new RemoteEnqueue(_book.Router.Epoch, ids, payloads, -1, _capacity) { Traces = Traces(batch.Items) });
    }

    private long Register(PutItem put)
    {
        var id = ++_book.LastId;
        put.ItemId = id;
        _book.Outstanding.Add(id, put);
        return id;
    }

    private void HandleAccepted(EnqueueAccepted message)
    {
        foreach (var id in message.ItemIds)
        {
            if (_book.Outstanding.TryGetValue(id, out var put) && put.Accepted.TrySetResult(true))
            {
                Interlocked.Increment(ref _counts.Accepted);
            }
        }
    }

    /// <summary>
    /// The router refused a put for want of space. Only the followed router's refusal counts: one from a router this
    /// producer left (it arrives late, nothing orders two senders' messages) may concern a put already announced to the
    /// next, which queues it; the caller must not hear "refused" for an item that will run.
    /// </summary>
    private void HandleFull(EnqueueFull message)
    {
        if (Sender.Equals(_book.Router.Current) && _book.Outstanding.TryGetValue(message.ItemId, out var put) && !put.Accepted.Task.IsCompleted)
        {
            _book.Outstanding.Remove(message.ItemId);
            Interlocked.Increment(ref _counts.Rejected);
            put.Accepted.TrySetResult(false);
            PublishOutstanding();
        }
    }

    private void HandleDone(ItemDone message)
    {
        if (!_book.Outstanding.Remove(message.ItemId, out var put))
        {
            Interlocked.Increment(ref _counts.Duplicates);
            _listenerFailures.Add(ActorQueueTelemetry.QueueDuplicatesCounter, 1, _metricTag);
            return;
        }

        if (put.Accepted.TrySetResult(true))
        {
            Interlocked.Increment(ref _counts.Accepted);
        }

        _listenerFailures.Add(ActorQueueTelemetry.QueueProcessedCounter, 1, _metricTag);
        if (message.Succeeded)
        {
            Interlocked.Increment(ref _counts.Succeeded);
        }
        else
        {
            Interlocked.Increment(ref _counts.Failed);
            _listenerFailures.Add(ActorQueueTelemetry.QueueErrorsCounter, 1, _metricTag);
        }

        if (message.Deliveries > 1)
        {
            Interlocked.Increment(ref _counts.Redelivered);
        }

        put.Done.TrySetResult(message);
        put.AnswerWithdrawals(false); // it ran to its end
        PublishOutstanding();
    }

    /// <summary>
    /// A router incarnation asks for this node's items: follow it from now on and hand it every item without a result.
    /// Only puts sent while it followed an incarnation may have been accepted (unanswered, the producer cannot tell), so
    /// only those are announced: announced items are queued past the bound, as accepted ones must be. A put sent while
    /// it followed none (its first contact, with epoch 0, or after its router was lost, with that router's epoch) went
    /// through the hub to an incarnation that drops it: none accepted it, so it goes to the new router as an ordinary put
    /// after the announcement and meets the bound and its wait for space, which starts again there (up to its timeout
    /// plus a round trip).
    /// </summary>
    private void HandleRecover(RecoverQueue message)
    {
        if (!_book.Router.Follow(Context, Sender, message.Epoch))
        {
            return; // a late request of a router this producer left behind
        }

        var puts = _book.Outstanding.Keys.Order().Select(id => _book.Outstanding[id]).ToList(); // put order: ids ascend
        var offered = puts.Where(put => put.Offered || put.Withdrawing).ToList(); // a withdrawn put is withdrawn there, never sent as a put
        Sender.Tell(new ProducerAnnounce(message.Epoch, _capacity, [.. offered.Select(put => put.ItemId)], [.. offered.Select(put => put.Payload)])
        {
            Traces = Traces(offered),
            Withdrawn = [.. offered.Where(put => put.Withdrawing).Select(put => put.ItemId)],
        });
        foreach (var put in puts.Where(put => !put.Offered && !put.Withdrawing))
        {
            SendPut(put);
        }
    }

    /// <summary>The puts' trace contexts, one per put; none (an empty array on the wire) when no put is traced.</summary>
    private static ItemTrace?[] Traces(IReadOnlyList<PutItem> puts) =>
        puts.Any(put => put.Trace is not null) ? [.. puts.Select(put => put.Trace)] : [];

    /// <summary>With items outstanding, make sure some router incarnation hears of this producer.</summary>
    private void HelloIfUnanswered()
    {
        if (_book.Outstanding.Count > 0)
        {
            _book.Router.HelloIfUnfollowed(Self);
        }
    }

    private void HandleTerminated(Terminated message)
    {
        if (_book.Router.Lost(message.ActorRef))
        {
            HelloIfUnanswered();
        }
    }

    private void Send(object message) => _book.Router.Send(message, Self);

    private void PublishOutstanding()
    {
        Volatile.Write(ref _counts.Outstanding, _book.Outstanding.Count);
        if (_book.Outstanding.Count == 0 && _book.Joiners.Count > 0)
        {
            foreach (var joiner in _book.Joiners)
            {
                joiner.TrySetResult();
            }

            _book.Joiners.Clear();
        }
    }
}

/// <summary>A facade's put: the item's text, how long it may wait for space, and the caller's two completions.</summary>
internal sealed partial class PutItem(string payload, long timeoutMs, ItemTrace? trace = null) : IUndeliverableRequest
{
    public string Payload { get; } = payload;

    /// <summary>The producer's trace context, or <c>null</c> for an untraced put.</summary>
    public ItemTrace? Trace { get; } = trace;

    public long TimeoutMs { get; } = timeoutMs;

    /// <summary>The producer's id for the item, set when the producer takes it.</summary>
    public long ItemId { get; set; }

    /// <summary>Whether it was last sent while the producer followed a router incarnation (one that may have accepted it); the producer's only.</summary>
    public bool Offered { get; set; }

    /// <summary><c>true</c> when the queue took the item, <c>false</c> on backpressure.</summary>
    public TaskCompletionSource<bool> Accepted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The item's result.</summary>
    public TaskCompletionSource<ItemDone> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <inheritdoc />
    public void Undelivered()
    {
        var disposed = new ObjectDisposedException(nameof(DistributedWorkQueue<object, object>), "The distributed queue handle has been disposed.");
        Accepted.TrySetException(disposed);
        Done.TrySetException(disposed);
    }
}

/// <summary>A chunk of <c>BatchProcessAsync</c>'s items, put with no timeout in one message.</summary>
internal sealed class PutBatch(IReadOnlyList<PutItem> items) : IUndeliverableRequest
{
    public IReadOnlyList<PutItem> Items { get; } = items;

    /// <inheritdoc />
    public void Undelivered()
    {
        foreach (var item in Items)
        {
            item.Undelivered();
        }
    }
}

/// <summary>A facade waits until the producer has no outstanding item.</summary>
internal sealed class JoinProducer : IUndeliverableRequest
{
    public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <inheritdoc />
    public void Undelivered() => Completion.TrySetException(new ObjectDisposedException(nameof(DistributedWorkQueue<object, object>), "The distributed queue handle has been disposed."));
}

/// <summary>
/// What a producer owes its callers, outside the actor instance so a restart keeps it: the items without a result,
/// the joiners, the last id given out (ids are never reused: the router knows items by producer and id) and the
/// router incarnation it follows (its announcement there stands).
/// </summary>
internal sealed class ProducerBook(SingletonLink router)
{
    /// <summary>Items without a result yet, by id (ascending = put order).</summary>
    public Dictionary<long, PutItem> Outstanding { get; } = [];

    /// <summary>Callers waiting for the queue to have no outstanding item.</summary>
    public List<TaskCompletionSource> Joiners { get; } = [];

    /// <summary>The router incarnation the producer follows.</summary>
    public SingletonLink Router { get; } = router;

    /// <summary>The last item id given out.</summary>
    public long LastId;
}
