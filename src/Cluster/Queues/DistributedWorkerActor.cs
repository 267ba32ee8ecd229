using System.Diagnostics;
using ActorQueue.Actors;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Cluster;

/// <summary>
/// One worker of a distributed queue on a worker node. It pulls one item at a time from the queue's router, runs
/// the node's handler on it off the actor's thread, sends the result straight to the item's producer, and pulls
/// again. When its router is gone it asks the hub for the new one; an item it was running is finished and
/// reported as usual.
/// </summary>
internal sealed class DistributedWorkerActor : ReceiveActor, IWithTimers
{
    /// <summary>The queue this worker pulls from.</summary>
    private readonly string _queueName;

    /// <summary>The span each traced item runs under: <c>process {queue}</c>, as in the in-memory queue.</summary>
    private readonly string _spanName;

    /// <summary>The node's handler, on the item's JSON text, returning the result's.</summary>
    private readonly Func<string, CancellationToken, Task<string?>> _run;

    /// <summary>This node's address, reported with each result.</summary>
    private readonly string _node;
    private readonly ILoggingAdapter _log = Context.GetLogger();

    /// <summary>Items dispatched while one was running (should not happen; kept, not dropped).</summary>
    private readonly Queue<ItemEnvelope> _backlog = new();

    /// <summary>The router incarnation this worker follows.</summary>
    private readonly SingletonLink _router;

    /// <summary>How often to say hello again while no router answers.</summary>
    private readonly TimeSpan _helloInterval;

    /// <summary>The item running now, if any.</summary>
    private ItemEnvelope? _current;

    /// <summary>Cancels the running item when the worker stops.</summary>
    private CancellationTokenSource? _cancellation;

    public DistributedWorkerActor(string queueName, Func<string, CancellationToken, Task<string?>> run, IActorRef hubProxy, string node, TimeSpan helloInterval)
    {
        _helloInterval = helloInterval;
        _queueName = queueName;
        _spanName = $"process {queueName}";
        _run = run;
        _router = new SingletonLink(hubProxy, message => new QueueEnvelope(queueName, 0, message));
        _node = node;

        Receive<DispatchItem>(HandleDispatch);
        Receive<RunFinished>(HandleFinished);
        Receive<RecoverQueue>(message => SingletonBinding.Check(Context, message, HandleRecover));
        Receive<CheckedRecovery<RecoverQueue>>(message => HandleRecover(message.Request));
        Receive<HelloTick>(_ => HelloIfIdle());
        Receive<Terminated>(message =>
        {
            if (_router.Lost(message.ActorRef))
            {
                HelloIfIdle();
            }
        });
    }

    public static Props Props(string queueName, Func<string, CancellationToken, Task<string?>> run, IActorRef hubProxy, string node, TimeSpan helloInterval) =>
        Akka.Actor.Props.Create(() => new DistributedWorkerActor(queueName, run, hubProxy, node, helloInterval));

    /// <inheritdoc />
    public ITimerScheduler Timers { get; set; } = null!;

    /// <inheritdoc />
    protected override void PreStart()
    {
        _router.HelloIfUnfollowed(Self);
        Timers.StartPeriodicTimer(HelloTick.Instance, HelloTick.Instance, _helloInterval);
    }

    /// <inheritdoc />
    /// <remarks>
    /// A handler that throws (a defect, or a message the worker cannot read) costs the worker only that message: Akka's
    /// default restart would cancel the item it runs, and the new instance, a first contact to a router that has the
    /// worker as announced, would never be asked again, so it would never pull. A dispatched item the failed message
    /// left untaken is reported failed with the cause, and an idle worker pulls again.
    /// </remarks>
    protected override bool AroundReceive(Receive receive, object message)
    {
        try
        {
            return base.AroundReceive(receive, message);
        }
        catch (Exception error)
        {
            _log.Error(error, "Distributed queue {0}: a worker failed handling {1}; it keeps the item it runs and goes on", _queueName, message.GetType().Name);
            if (message is DispatchItem { Envelope: { } envelope } && !ReferenceEquals(envelope, _current) && !_backlog.Contains(envelope))
            {
                var failed = new RunFinished(envelope, false, null, $"The worker failed taking the item: {error.GetType().Name}: {error.Message}");
                if (_current is null)
                {
                    HandleFinished(failed); // reports it and pulls again, as after a run
                }
                else
                {
                    envelope.Producer.Tell(new ItemDone(envelope.ItemId, envelope.Deliveries, false, null, failed.Error, _node));
                }
            }

            return true;
        }
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        _cancellation?.Cancel();
        base.PostStop();
    }

    private void HandleDispatch(DispatchItem message)
    {
        if (_current is not null)
        {
            _log.Warning("Distributed queue {0}: worker got item {1} while running {2}; it runs next", _queueName, message.Envelope.ItemId, _current.ItemId);
            _backlog.Enqueue(message.Envelope);
            return;
        }

        Start(message.Envelope);
    }

    private void Start(ItemEnvelope envelope)
    {
        _current = envelope;
        _cancellation = new CancellationTokenSource();
        var token = _cancellation.Token;
        var run = _run;
        var self = Self;
        var (spanName, queueName) = (_spanName, _queueName);
        _ = Task.Run(async () =>
        {
            // A traced item runs under a consumer span, child of the producer's, as Activity.Current; an untraced one starts nothing.
            using var span = envelope.Trace is { } trace ? ItemTraces.StartProcessing(spanName, queueName, trace.Context) : null;
            try
            {
                var result = await run(envelope.Payload, token).ConfigureAwait(false);
                self.Tell(new RunFinished(envelope, true, result, null));
            }
            catch (Exception exception)
            {
                span?.SetStatus(ActivityStatusCode.Error, exception.GetType().Name);
                self.Tell(new RunFinished(envelope, false, null, $"{exception.GetType().Name}: {exception.Message}"));
            }
        }, CancellationToken.None);
    }

    private void HandleFinished(RunFinished finished)
    {
        var envelope = finished.Envelope;
        envelope.Producer.Tell(new ItemDone(envelope.ItemId, envelope.Deliveries, finished.Succeeded, finished.ResultPayload, finished.Error, _node));
        _current = null;
        if (_backlog.TryDequeue(out var next))
        {
            Start(next);
            return;
        }

        if (_router.Current is null)
        {
            _router.HelloIfUnfollowed(Self);
        }
        else
        {
            Send(new WorkerPull(_router.Epoch));
        }
    }

    private void HandleRecover(RecoverQueue message)
    {
        if (!_router.Follow(Context, Sender, message.Epoch))
        {
            return; // a late request of a router this worker left behind
        }

        Sender.Tell(new WorkerAnnounce(message.Epoch, _current is not null));
    }

    /// <summary>A free worker makes sure some router incarnation hears of it (a busy one does so when it finishes).</summary>
    private void HelloIfIdle()
    {
        if (_current is null)
        {
            _router.HelloIfUnfollowed(Self);
        }
    }

    private void Send(object message) => _router.Send(message, Self);

    private sealed record RunFinished(ItemEnvelope Envelope, bool Succeeded, string? ResultPayload, string? Error);
}
