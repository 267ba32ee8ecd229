using ActorQueue.Actors;
using ActorQueue.Coordination;
using ActorQueue.Telemetry;
using Akka.Actor;
using Akka.Event;
using AkkaCluster = Akka.Cluster.Cluster;

namespace ActorQueue.Cluster;

/// <summary>
/// A distributed queue's router, a child of the singleton hub: the FIFO of items, the waiting puts, and the
/// workers of every node, which pull one item at a time. It watches each worker it hands an item to: when the
/// worker's node is lost, the item goes back to the head of the queue and another worker runs it
/// (at-least-once; after <c>max-deliveries</c> losses it is reported failed instead).
/// </summary>
/// <remarks>
/// A new incarnation (after the singleton moved) starts empty: it asks every node to announce itself, and
/// producers hand it every item that has no result yet, workers report whether they are free. A durable router
/// (<c>DistributedRouterActor.Durable.cs</c>) first reads its journal back, so it starts with every accepted item that
/// had not finished, even if no producer is left to announce it.
/// </remarks>
internal sealed partial class DistributedRouterActor : ReceiveActor, IWithTimers, IWithUnboundedStash, IRecoveryRequests
{
    /// <summary>The queue's name.</summary>
    private readonly string _name;

    /// <summary>How often an item may be lost with a worker before it is reported failed.</summary>
    private readonly int _maxDeliveries;

    /// <summary>This incarnation: its epoch and the producers and workers announced to it. It serves at once: what they re-announce only adds to the queue.</summary>
    private readonly Incarnation _incarnation;
    private readonly ILoggingAdapter _log = Context.GetLogger();

    /// <summary>Items waiting for a worker, oldest first.</summary>
    private readonly ItemDeque<ItemEnvelope> _queue = new(16);

    /// <summary>Puts waiting for space, oldest first.</summary>
    private readonly WaiterQueue<WaitingPut> _waitingPuts = new();

    /// <summary>Every worker known to this incarnation, with the item it runs (null when free or busy with an earlier incarnation's item).</summary>
    private readonly Dictionary<IActorRef, ItemEnvelope?> _workers = [];

    /// <summary>Free workers, in the order they asked.</summary>
    private readonly LinkedList<IActorRef> _idle = new();

    /// <summary>Items accepted while handling the current message, by producer, not yet acknowledged (lists reused).</summary>
    private readonly Dictionary<IActorRef, List<long>> _acceptances = [];

    /// <summary>The metric tag naming this queue.</summary>
    private readonly KeyValuePair<string, object?> _metricTag;

    /// <summary>Where a metrics listener that throws is reported (inside a message, it would restart the router).</summary>
    private readonly ListenerFailureLog _listenerFailures;

    /// <summary>Puts the queue's depth on the depth up-down counter.</summary>
    private readonly UpDownPublisher _depth;

    /// <summary>The producers' capacity (0 until a producer tells it).</summary>
    private int _capacity;

    /// <summary>Deliveries to workers.</summary>
    private long _dispatched;

    /// <summary>Items put back because their worker was lost.</summary>
    private long _redelivered;

    /// <summary>Items reported failed after max-deliveries losses.</summary>
    private long _lostFailed;

    public DistributedRouterActor(string name, int capacity, int maxDeliveries, DistributedQueueStorage? storage)
    {
        _name = name;
        _capacity = capacity;
        _maxDeliveries = maxDeliveries;
        _storage = storage;
        _metricTag = new(ActorQueueTelemetry.QueueNameTag, name);
        _listenerFailures = new ListenerFailureLog(_log, name);
        _depth = new(ActorQueueTelemetry.QueueDepthCounter, _metricTag, _listenerFailures);
        _incarnation = new Incarnation(this, awaitEveryMember: false);
        if (storage is null)
        {
            Serving();
        }
        else
        {
            Recovering();
        }
    }

    /// <inheritdoc />
    public ITimerScheduler Timers { get; set; } = null!;

    /// <inheritdoc />
    public IStash Stash { get; set; } = null!;

    public static Props Props(string name, int capacity, int maxDeliveries, DistributedQueueStorage? storage = null) =>
        Akka.Actor.Props.Create(() => new DistributedRouterActor(name, capacity, maxDeliveries, storage));

    /// <summary>Items in the queue, held for their producer or being written to the journal: what counts against the capacity.</summary>
    private int Occupied => Waiting + _writing.Count;

    private void Serving()
    {
        Receive<RemoteEnqueue>(HandleEnqueue);
        Receive<JournalWritten>(HandleWritten);
        Receive<JournalEnded>(HandleEnded);
        Receive<JournalRejected>(HandleRejected);
        Receive<PutExpired>(HandlePutExpired);
        Receive<ProducerAnnounce>(HandleProducerAnnounce);
        Receive<WithdrawItem>(HandleWithdraw);
        Receive<AskHeld>(_ => HandleAskHeld());
        Receive<AgentHello>(hello => _incarnation.Hello(hello.Epoch, Sender));
        Receive<WorkerAnnounce>(HandleWorkerAnnounce);
        Receive<WorkerPull>(HandleWorkerPull);
        Receive<Terminated>(HandleTerminated);
        Receive<GetQueueStatus>(_ => Sender.Tell(new DistributedQueueStatus(
            _name, Waiting, _workers.Values.Count(item => item is not null), _workers.Count, _waitingPuts.Count, _dispatched, _redelivered, _lostFailed)
        {
            Unreadable = _unreadable,
            RejectedWrites = _rejectedWrites,
            Withdrawn = _withdrawn,
        }));
    }

    private int Capacity => Math.Max(1, _capacity);

    /// <inheritdoc />
    protected override bool AroundReceive(Receive receive, object message)
    {
        var handled = base.AroundReceive(receive, message);
        AssertKnownItems();
        _depth.Publish(Waiting);
        return handled;
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        _depth.Publish(0); // the next incarnation adds what it recovers
        base.PostStop();
    }

    /// <inheritdoc />
    protected override void PreStart()
    {
        if (_storage is null)
        {
            BeginIncarnation();
        }
        else
        {
            StartJournal();
        }
    }

    private void BeginIncarnation()
    {
        _log.Info("Distributed queue router {0} started with epoch {1}; asking the members for their items and workers", _name, _incarnation.Epoch);
        _incarnation.Begin(AkkaCluster.Get(Context.System).State.Members.Select(member => member.Address));
    }

    private void HandleEnqueue(RemoteEnqueue message)
    {
        if (!_incarnation.Admit(message.Epoch, Sender))
        {
            return;
        }

        _capacity = message.Capacity;
        for (var i = 0; i < message.ItemIds.Length; i++)
        {
            Enqueue(Sender, message.ItemIds[i], message.Payloads[i], TraceOf(message.Traces, i), message.TimeoutMs);
        }

        Dispatch();
    }

    private static ItemTrace? TraceOf(ItemTrace?[] traces, int index) => index < traces.Length ? traces[index] : null;

    private void HandleWorkerPull(WorkerPull message)
    {
        if (!_incarnation.Admit(message.Epoch, Sender))
        {
            return;
        }

        WorkerFor(Sender);
        if (_workers[Sender] is { } finished)
        {
            Finished(finished); // a worker pulls again only after its item has its result
        }

        _workers[Sender] = null;
        MarkIdle(Sender);
        Dispatch();
    }

    /// <summary>
    /// A worker or a producer stopped; a worker's item in flight goes back to the queue (or fails after too many losses,
    /// or ends withdrawn when its producer withdrew it while it ran); a producer's recovered items held for it are queued.
    /// </summary>
    private void HandleTerminated(Terminated message)
    {
        if (JournalStopped(message.ActorRef))
        {
            return;
        }

        _incarnation.Forget(message.ActorRef);
        _acceptances.Remove(message.ActorRef);
        if (!_workers.Remove(message.ActorRef, out var inFlight))
        {
            if (ReleaseGone(message.ActorRef))
            {
                Dispatch();
            }

            return;
        }

        _idle.Remove(message.ActorRef);
        if (inFlight is null || WithdrawnAtLoss(inFlight))
        {
            return;
        }

        if (inFlight.Deliveries >= _maxDeliveries)
        {
            _lostFailed++;
            _log.Warning("Distributed queue {0}: item {1} of {2} was lost with {3} workers; reported failed (a durable router: once its end is written)", _name, inFlight.ItemId, inFlight.Producer.Path, inFlight.Deliveries);
            Finished(inFlight, new ItemDone(inFlight.ItemId, inFlight.Deliveries, false, null,
                $"The item was lost with the worker's node {inFlight.Deliveries} time(s) (max-deliveries = {_maxDeliveries})", message.ActorRef.Path.Address.ToString()));
            return;
        }

        _redelivered++;
        _listenerFailures.Add(ActorQueueTelemetry.QueueRedeliveredCounter, 1, _metricTag);
        _log.Info("Distributed queue {0}: worker {1} is gone with item {2}; re-dispatching it", _name, message.ActorRef.Path, inFlight.ItemId);
        _queue.PushFront(inFlight with { Deliveries = inFlight.Deliveries + 1 });
        Dispatch();
    }

    /// <summary>
    /// Puts an item in the queue (a durable router first writes it); its acceptance goes out with the others of this
    /// message (<see cref="SendAcceptances"/>).
    /// </summary>
    private void Accept(IActorRef producer, long itemId, string payload, ItemTrace? trace)
    {
        if (_storage is not null)
        {
            Store(producer, itemId, payload, trace);
            return;
        }

        _unfinished.Add((producer, itemId));
        Queue(new ItemEnvelope(producer, itemId, payload, Deliveries: 1) { Trace = trace });
    }

    private void Queue(ItemEnvelope envelope)
    {
        _queue.PushBack(envelope);
        _listenerFailures.Add(ActorQueueTelemetry.QueueEnqueuedCounter, 1, _metricTag);
        Acknowledge(envelope.Producer, envelope.ItemId);
    }

    private void Acknowledge(IActorRef producer, long itemId)
    {
        if (!_acceptances.TryGetValue(producer, out var ids))
        {
            ids = [];
            _acceptances.Add(producer, ids);
        }

        ids.Add(itemId);
    }

    /// <summary>One acceptance message per producer for everything one message let in.</summary>
    private void SendAcceptances()
    {
        foreach (var (producer, ids) in _acceptances)
        {
            if (ids.Count > 0)
            {
                producer.Tell(new EnqueueAccepted([.. ids]));
                ids.Clear();
            }
        }
    }

    /// <summary>Hands items to free workers, oldest first, then lets waiting puts into the space that frees.</summary>
    private void Dispatch()
    {
        do
        {
            while (_idle.First is { } worker && _queue.Count > 0)
            {
                _idle.RemoveFirst();
                var envelope = _queue.PopFront();
                _workers[worker.Value] = envelope;
                _dispatched++;
                Started(envelope);
                worker.Value.Tell(new DispatchItem(_incarnation.Epoch, envelope));
            }

            while (Occupied < Capacity && _waitingPuts.Dequeue() is { } put)
            {
                Timers.Cancel(put);
                _waiting.Remove((put.Producer, put.ItemId));
                Accept(put.Producer, put.ItemId, put.Payload, put.Trace);
            }
        }
        while (_idle.Count > 0 && _queue.Count > 0);

        SendAcceptances();
    }

    private void MarkIdle(IActorRef worker)
    {
        if (!_idle.Contains(worker))
        {
            _idle.AddLast(worker);
        }
    }

    private void WorkerFor(IActorRef worker)
    {
        if (_workers.TryAdd(worker, null))
        {
            Context.Watch(worker);
        }
    }

    void IRecoveryRequests.AskNode(Address node, long epoch) => NodeHostActor.At(Context, node).Tell(new RecoverQueue(_name, epoch), Self);

    /// <summary>
    /// Asks an agent to announce itself. A worker asked is given nothing until it has: one asked again (it left this
    /// incarnation) then says free only if it finished what it was given before (<see cref="HandleWorkerAnnounce"/>).
    /// </summary>
    void IRecoveryRequests.AskAgent(IActorRef agent, long epoch)
    {
        _idle.Remove(agent);
        agent.Tell(new RecoverQueue(_name, epoch), Self);
    }
}
