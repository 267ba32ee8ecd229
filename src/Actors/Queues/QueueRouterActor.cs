using System.Diagnostics;
using ActorQueue.Runtime;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// The one owner of a queue, wiring its parts together: the ledger (buffer and counts), put admission (credits, the
/// inbox, waiting puts and batches), the hand-out (getters, and the worker pool), and the callers waiting on the lifecycle. The
/// lifecycle is the actor's behaviour: <see cref="Idle"/>, <see cref="Processing"/>, <see cref="Stopping"/> and
/// <see cref="Stopped"/> each answer the messages in their own way (<c>QueueRouterActor.Lifecycle.cs</c>). Workers pull, so an item leaves the buffer only
/// when a worker or getter is free for it; nothing is ever dropped: an item is processed, reported as failed, put back
/// at the head (stop timeout, lost worker), or handed back by a drain.
/// </summary>
internal sealed partial class QueueRouterActor<T> : ReceiveActor, IWithTimers
{
    private const string HeartbeatTimerKey = "heartbeat";

    private readonly int _capacity;
    private readonly TimeSpan _heartbeatPeriod;
    private readonly string _workerDispatcher;
    private readonly QueueTelemetry _telemetry;

    /// <summary>The counts as the facade reads them; this actor is their one writer (<see cref="Publish"/>).</summary>
    private readonly QueueCounters _counters;

    private readonly QueueLedger<T> _ledger;
    private readonly PutAdmission<T> _admission;
    private readonly ItemHandOut<IActorRef, T> _handOut;
    private readonly WorkerPool<IActorRef, T> _pool;
    private readonly LifecycleWaiters _waiters;

    /// <summary>The current behaviour's status: what the counts and <c>GetStatus</c> report, and whether items are handed on.</summary>
    private QueueStatus _status = QueueStatus.Idle;

    /// <summary>The latest worker spec, used again by a restart after a stop.</summary>
    private WorkerSpec<T>? _spec;

    /// <summary>The facade's credited puts; told the workers' error handler, for items put after the router is gone.</summary>
    private readonly PutInbox<T> _inbox;

    /// <summary>Numbers worker generations, for unique child names.</summary>
    private int _generation;

    /// <summary>The stop under way: its grace period, and a disposal's wait for the work cancelled after it.</summary>
    private readonly StopGrace _grace;

    public QueueRouterActor(int capacity, int workerBatch, TimeSpan heartbeatPeriod, string workerDispatcher, QueueTelemetry telemetry, QueueCounters counters,
                            PutInbox<T> inbox)
    {
        _waiters = new LifecycleWaiters(Context.System);
        _grace = new StopGrace(_waiters, Context.System.Scheduler);
        _capacity = capacity;
        _heartbeatPeriod = heartbeatPeriod;
        _workerDispatcher = workerDispatcher;
        _telemetry = telemetry;
        _counters = counters;
        _inbox = inbox;
        _ledger = new QueueLedger<T>(capacity, telemetry.Tag, telemetry.ListenerFailures);
        _admission = new PutAdmission<T>(capacity, _ledger, inbox, Timers, telemetry, Publish);
        _pool = new WorkerPool<IActorRef, T>(workerBatch, ActorRefComparer.Instance);
        _handOut = new ItemHandOut<IActorRef, T>(_ledger, _pool, Publish, static (worker, run) => worker.Tell(run));
        Idle();
    }

    /// <inheritdoc />
    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(int capacity, int workerBatch, TimeSpan heartbeatPeriod, string workerDispatcher, QueueTelemetry telemetry, QueueCounters counters,
                              PutInbox<T> inbox) =>
        Akka.Actor.Props.Create(() => new QueueRouterActor<T>(capacity, workerBatch, heartbeatPeriod, workerDispatcher, telemetry, counters, inbox));

    /// <summary>An exception escaping a worker restarts that worker only; its item in hand is reported as an error (<see cref="WorkerCrashed"/>).</summary>
    protected override SupervisorStrategy SupervisorStrategy() =>
        new OneForOneStrategy(maxNrOfRetries: -1, withinTimeRange: Timeout.InfiniteTimeSpan, localOnlyDecider: _ => Directive.Restart);

    /// <summary>
    /// Takes credited puts in before every message, so each message sees every item put before it was sent; afterwards
    /// grants the free space as credits and settles whether a credited put must tell the router.
    /// </summary>
    protected override bool AroundReceive(Receive receive, object message)
    {
        if (_admission.TakeInbox())
        {
            Pump();
        }

        var handled = base.AroundReceive(receive, message);
        SettleInbox();
        return handled;
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        // Take in what was put before the end; a put that adds its item later tells a router that is gone (InboxSignal).
        _admission.Close();
        _handOut.AbandonRuns();

        // Stopped, however it came (a disposal, or the system terminating while the queue processed or waited for its
        // workers to stop): the router is gone, so the queue reads Stopped from now on. Stopped is set, and the counts
        // settled and published, before any caller hears: a put refused, a join failed or a stop completed here reads
        // it. Before, the counts stayed Stopping (or Processing) for good (Review/HostingStopRound42Tests), and then the
        // puts and joins were answered before Stopped was published (Review/RouterSystemEndRound44Tests).
        // The items still queued, those of the runs the stopped workers held and never reported, and those getters hold
        // (no TaskDone can reach the router now) are discarded: reported as failed all the same, and counted.
        _status = QueueStatus.Stopped;
        var queued = _ledger.DiscardAll();
        var taken = _ledger.DiscardTaken();
        Publish();
        AssertSettled();

        var disposed = QueueErrors.Disposed();
        _admission.RefuseAll(QueueStatus.Stopped, cancelTimers: false);
        _handOut.RefuseGetters(disposed);
        _waiters.FailJoins(disposed);
        if (queued.Count > 0)
        {
            _ = _telemetry.ReportDiscarded(_spec?.ErrorHandler, queued);
        }

        if (taken.Count > 0)
        {
            _ = _telemetry.ReportDiscarded(_spec?.ErrorHandler, taken, taken: true);
        }

        _ledger.WithdrawDepth();
        _waiters.CompleteStops();
        base.PostStop();
    }

    /// <summary>The router is gone: nothing is queued or in flight any more, and the counts it published say Stopped.</summary>
    [Conditional("DEBUG")]
    private void AssertSettled()
    {
        var metrics = _ledger.Metrics;
        Debug.Assert(_status == QueueStatus.Stopped && _ledger.Size == 0 && metrics.InFlight == 0,
            $"a router gone reads {_status} with {_ledger.Size} queued and {metrics.InFlight} in flight");
        Debug.Assert(_counters.Status == QueueStatus.Stopped && _counters.Metrics.InFlight == 0, "the counters are published settled");
    }

    /// <summary>
    /// The queue is disposed with items still queued, or held by <c>GetAsync</c> callers (their <c>TaskDone</c> is refused
    /// as disposed from now on): they leave the ledger as discarded, the counts are published (so the error handler sees
    /// them in Metrics), and each is reported as failed, off the router's thread. Before, the held items were discarded
    /// only in PostStop, after the disposal had completed: a caller whose disposal had completed read them in flight, and
    /// the disposal did not wait for their reports (Review/SecondReadingRound44Tests).
    /// </summary>
    /// <returns>The reports.</returns>
    private Task DiscardQueued()
    {
        var discarded = _ledger.DiscardAll();
        var taken = _ledger.DiscardTaken();
        Publish();
        var queuedReports = discarded.Count > 0 ? _telemetry.ReportDiscarded(_spec?.ErrorHandler, discarded) : Task.CompletedTask;
        return taken.Count == 0 ? queuedReports : Task.WhenAll(queuedReports, _telemetry.ReportDiscarded(_spec?.ErrorHandler, taken, taken: true));
    }

    /// <summary>A put while processing (none when an actor's put was invalid and has been answered).</summary>
    private void Offer(PendingPut<T>? put)
    {
        if (put is not null && _admission.Offer(put))
        {
            Pump();
        }
    }

    private void HandleGet(GetRequest<T> get)
    {
        if (_handOut.AddGetter(get))
        {
            Pump();
        }
    }

    private void HandleTaskDone()
    {
        if (!_ledger.GetterDone())
        {
            _telemetry.TaskDoneWithoutGet();
            return;
        }

        AfterItemFinished();
    }

    private void HandleItemsFinished(ItemsFinished message)
    {
        if (!_handOut.Finished(Sender, message, out var stop))
        {
            return; // a run of a crashed incarnation, already settled
        }

        if (stop)
        {
            Context.Stop(Sender);
        }

        AfterItemFinished();
    }

    private void HandleWorkerCrashed(WorkerCrashed message)
    {
        var run = _handOut.Crashed(Sender, message);
        if (!run.Settles)
        {
            return;
        }

        if (run.Lost > 0)
        {
            _telemetry.WorkerCrashed(Sender.Path.Name, message.Cause, _spec?.ErrorHandler, run.LostItem);
        }

        AfterItemFinished();
    }

    private void HandleWorkerTerminated(Terminated message)
    {
        if (_handOut.Gone(message.ActorRef))
        {
            Pump();
            CheckStopped();
        }
    }

    private void HandleStartWorkers(StartWorkers<T> command)
    {
        RetireAllWorkers();
        _spec = command.Spec;
        _inbox.ErrorHandler = command.Spec.ErrorHandler;
        SpawnWorkers(command.Spec);
        Publish();
        command.Completion.TrySetResult(true);
    }

    /// <summary>Moves items to whoever can take them: waiting puts into free space, queued items to getters and free workers.</summary>
    private void Pump()
    {
        while (_status == QueueStatus.Processing)
        {
            _admission.AdmitWaiting();
            if (!_handOut.TryHandOutOne())
            {
                break;
            }
        }

        Publish();
        _admission.AnswerAdmittedBatches();
    }

    private void AfterItemFinished()
    {
        Pump();
        _waiters.Settled(_ledger.Unfinished);
        CheckStopped();
    }

    /// <summary>
    /// After a message: grants the free space as credits while processing, and settles whether a credited put must
    /// tell the router. It need not while no free worker or getter could take an item: whatever takes the next item
    /// (a worker's report, a get, a start) is a message, and the inbox is taken in before it.
    /// </summary>
    private void SettleInbox()
    {
        while (true)
        {
            if (_status == QueueStatus.Processing)
            {
                _admission.GrantFreeSpace();
            }

            if (!_handOut.AnyTaker)
            {
                _admission.WillLook();
                return;
            }

            if (!_admission.LookAgain())
            {
                return;
            }

            Pump();
        }
    }

    private void SpawnWorkers(WorkerSpec<T> spec)
    {
        _generation++;
        var props = QueueWorkerActor<T>.Props(spec, _telemetry).WithDispatcher(_workerDispatcher);
        for (var i = 1; i <= spec.Count; i++)
        {
            var worker = Context.ActorOf(props, $"worker-{_generation}-{i}");
            Context.Watch(worker);
            _pool.Add(worker);
        }
    }

    /// <summary>Workers holding items finish the one in hand, hand back the rest and are stopped after their report; the others stop now.</summary>
    private void RetireAllWorkers()
    {
        foreach (var worker in _pool.RetireAll())
        {
            Context.Stop(worker);
        }
    }

    /// <summary>Publishes the counts for the facade's synchronous reads, and the depth to the meter.</summary>
    private void Publish()
    {
        _ledger.ReportDepth();
        _counters.Publish(_status, _ledger.Size, _pool.ActiveCount, _ledger.Metrics);
    }
}
