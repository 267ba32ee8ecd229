using ActorQueue.Coordination;
using ActorQueue.Runtime;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// The one owner of a queue, wiring its parts together: the ledger (buffer and counts), put admission (credits, the
/// inbox, waiting puts and batches), the worker pool, the getters, and the callers waiting on the lifecycle. The
/// lifecycle is the actor's behaviour: <see cref="Idle"/>, <see cref="Processing"/>, <see cref="Stopping"/> and
/// <see cref="Stopped"/> each answer the messages in their own way. Workers pull, so an item leaves the buffer only
/// when a worker or getter is free for it; nothing is ever dropped: an item is processed, reported as failed, put back
/// at the head (stop timeout, lost worker), or handed back by a drain.
/// </summary>
internal sealed class QueueRouterActor<T> : ReceiveActor, IWithTimers
{
    private const string StopTimerKey = "stop-timeout";
    private const string HeartbeatTimerKey = "heartbeat";

    private readonly int _capacity;
    private readonly TimeSpan _heartbeatPeriod;
    private readonly string _workerDispatcher;
    private readonly QueueTelemetry _telemetry;

    /// <summary>The counts as the facade reads them; this actor is their one writer (<see cref="Publish"/>).</summary>
    private readonly QueueCounters _counters;

    private readonly QueueLedger<T> _ledger;
    private readonly PutAdmission<T> _admission;
    private readonly WorkerPool<IActorRef, T> _pool;
    private readonly LifecycleWaiters _waiters = new();

    /// <summary><c>GetAsync</c> callers waiting for an item, oldest first.</summary>
    private readonly WaiterQueue<GetRequest<T>> _gets = new();

    /// <summary>The current behaviour's status: what the counts and <c>GetStatus</c> report, and whether items are handed on.</summary>
    private QueueStatus _status = QueueStatus.Idle;

    /// <summary>The latest worker spec, used again by a restart after a stop.</summary>
    private WorkerSpec<T>? _spec;

    /// <summary>Numbers worker generations, for unique child names.</summary>
    private int _generation;

    public QueueRouterActor(int capacity, int workerBatch, TimeSpan heartbeatPeriod, string workerDispatcher, QueueTelemetry telemetry, QueueCounters counters,
                            PutInbox<T> inbox)
    {
        _capacity = capacity;
        _heartbeatPeriod = heartbeatPeriod;
        _workerDispatcher = workerDispatcher;
        _telemetry = telemetry;
        _counters = counters;
        _ledger = new QueueLedger<T>(capacity, telemetry.Tag);
        _admission = new PutAdmission<T>(capacity, _ledger, inbox, Timers, telemetry, Publish);
        _pool = new WorkerPool<IActorRef, T>(workerBatch, ActorRefComparer.Instance);
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
        var disposed = QueueErrors.Disposed();
        _admission.RefuseAll(QueueStatus.Stopped, cancelTimers: false);
        _gets.DrainAll(get => get.Completion.TrySetException(disposed));
        _waiters.FailJoins(disposed);
        if (_ledger.Size > 0)
        {
            _telemetry.Log.Warning("Queue {QueueName} disposed with {Count} items still queued; they were not processed", _telemetry.QueueName, _ledger.Size);
        }

        _ledger.WithdrawDepth();
        _waiters.CompleteStops();
        base.PostStop();
    }

    /// <summary>Created, not started: puts and gets are refused; workers may be started ahead of the start.</summary>
    private void Idle()
    {
        HandledInEveryState();
        Receive<StartQueue>(HandleStart);
        Receive<StopQueue>(StopAtOnce);
        Receive<JoinQueue>(join => _waiters.Join(join, _ledger.Unfinished));
        Receive<DrainQueue<T>>(HandleDrain);
        RefusingPutsAndGets(QueueStatus.Idle);
    }

    /// <summary>Accepting puts and handing items to getters and free workers.</summary>
    private void Processing()
    {
        HandledInEveryState();
        Receive<FacadePut<T>>(put =>
        {
            if (_admission.Offer(put))
            {
                Pump();
            }
        });
        Receive<QueueProtocol.Put>(message =>
        {
            if (ActorPut<T>.From(message, Sender) is { } put && _admission.Offer(put))
            {
                Pump();
            }
        });
        Receive<BatchPut<T>>(batch =>
        {
            _admission.AddBatch(batch);
            Pump();
        });
        Receive<GetRequest<T>>(HandleGet);
        Receive<Heartbeat>(_ => HandleHeartbeat());
        Receive<StartQueue>(start => start.Completion.TrySetResult(true));
        Receive<StopQueue>(BeginStopping);
        Receive<JoinQueue>(join => _waiters.Join(join, _ledger.Unfinished));
        Receive<DrainQueue<T>>(drain => RefuseDrain(drain, QueueStatus.Processing));
    }

    /// <summary>No new puts or gets; retiring workers finish the item in hand until the last is gone or the stop timeout cancels them.</summary>
    private void Stopping()
    {
        HandledInEveryState();
        Receive<StartQueue>(start => start.Completion.TrySetException(
            new QueueStateException("Cannot start a queue while it is stopping; await StopAsync first", QueueStatus.Stopping)));
        Receive<StopQueue>(_waiters.AddStopper);
        Receive<StopTimedOut>(_ => CancelInFlight());
        Receive<JoinQueue>(join => _waiters.Join(join, _ledger.Unfinished));
        Receive<DrainQueue<T>>(drain => RefuseDrain(drain, QueueStatus.Stopping));
        RefusingPutsAndGets(QueueStatus.Stopping);
    }

    /// <summary>No workers run; items left stay queued until a start resumes them or a drain hands them back.</summary>
    private void Stopped()
    {
        HandledInEveryState();
        Receive<StartQueue>(HandleStart);
        Receive<StopQueue>(StopAtOnce);
        Receive<JoinQueue>(join => LifecycleWaiters.JoinStopped(join, _ledger.Unfinished));
        Receive<DrainQueue<T>>(HandleDrain);
        RefusingPutsAndGets(QueueStatus.Stopped);
    }

    /// <summary>Messages every behaviour answers alike: the workers' reports come first, as the most frequent.</summary>
    private void HandledInEveryState()
    {
        Receive<InboxSignal<T>>(_ => { }); // the inbox is taken in before every message
        Receive<ItemsFinished>(HandleItemsFinished);
        Receive<RequestWork>(_ =>
        {
            if (_pool.MarkIdle(Sender))
            {
                Pump();
            }
        });
        Receive<TaskDoneSignal>(_ => HandleTaskDone());
        Receive<PutTimedOut<T>>(message => _admission.TimedOut(message.Put));
        Receive<CancelPut<T>>(message => _admission.Withdraw(message.Put));
        Receive<CancelGet<T>>(message => _gets.Remove(message.Get));
        Receive<WorkerCrashed>(HandleWorkerCrashed);
        Receive<Terminated>(HandleWorkerTerminated);
        Receive<StartWorkers<T>>(HandleStartWorkers);
        Receive<QueueProtocol.GetStatus>(_ =>
            Sender.Tell(new QueueProtocol.Status(_status, _ledger.Size, _capacity, _pool.ActiveCount, _ledger.Metrics)));
    }

    /// <summary>Puts, batches and gets are refused with <paramref name="status"/>; one its caller has already withdrawn is dropped.</summary>
    private void RefusingPutsAndGets(QueueStatus status)
    {
        var refusal = QueueErrors.CannotPut(status);
        Receive<FacadePut<T>>(put =>
        {
            if (!put.IsAbandoned)
            {
                put.Refused(status, refusal);
            }
        });
        Receive<QueueProtocol.Put>(message => ActorPut<T>.From(message, Sender)?.Refused(status, refusal));
        Receive<BatchPut<T>>(batch => batch.Completion.TrySetException(new QueueStateException(refusal, status)));
        Receive<GetRequest<T>>(get => get.Completion.TrySetException(new QueueStateException(QueueErrors.CannotGet(status), status)));
    }

    /// <summary>Moves to <paramref name="status"/>: its behaviour answers from the next message on.</summary>
    private void Enter(QueueStatus status, Action behaviour)
    {
        _status = status;
        Become(behaviour);
    }

    /// <summary>From idle or stopped: processing, with the last workers respawned if they were stopped.</summary>
    private void HandleStart(StartQueue command)
    {
        Enter(QueueStatus.Processing, Processing);
        _telemetry.Log.Information("Queue {QueueName} started with {Count} items queued", _telemetry.QueueName, _ledger.Size);
        if (_spec is not null && _pool.ActiveCount == 0)
        {
            SpawnWorkers(_spec);
        }

        Timers.StartPeriodicTimer(HeartbeatTimerKey, Heartbeat.Instance, _heartbeatPeriod);
        Pump();
        command.Completion.TrySetResult(true);
    }

    /// <summary>While processing: puts and gets are refused, workers retire, and after the timeout their work is cancelled.</summary>
    private void BeginStopping(StopQueue command)
    {
        _waiters.AddStopper(command);
        Enter(QueueStatus.Stopping, Stopping);
        _admission.RevokeCredits();
        Timers.Cancel(HeartbeatTimerKey);
        _telemetry.Log.Information("Queue {QueueName} stopping: {InFlight} in flight, {Count} queued", _telemetry.QueueName, _ledger.WorkerInFlight, _ledger.Size);
        _admission.RefuseAll(QueueStatus.Stopping, cancelTimers: true);
        _gets.DrainAll(get => get.Completion.TrySetException(new QueueStateException(QueueErrors.CannotGet(QueueStatus.Stopping), QueueStatus.Stopping)));
        RetireAllWorkers();
        if (command.Timeout != Timeout.InfiniteTimeSpan)
        {
            Timers.StartSingleTimer(StopTimerKey, StopTimedOut.Instance, command.Timeout);
        }

        CheckStopped();
    }

    /// <summary>While idle or stopped: stopped at once, once workers started meanwhile are gone.</summary>
    private void StopAtOnce(StopQueue command)
    {
        _waiters.AddStopper(command);
        Enter(QueueStatus.Stopped, Stopped);
        RetireAllWorkers();
        CheckStopped();
    }

    /// <summary>The stop timeout ran out: the work in hand is cancelled and goes back to the head of the queue.</summary>
    private void CancelInFlight()
    {
        var busy = _pool.Busy();
        if (busy.Count == 0)
        {
            return;
        }

        _telemetry.Log.Warning("Queue {QueueName} stop timeout: cancelling {Count} in-flight items; they go back to the head of the queue",
            _telemetry.QueueName, busy.Count);
        foreach (var worker in busy)
        {
            worker.Tell(CancelWork.Instance);
        }
    }

    /// <summary>
    /// Settles the lifecycle after a change: a stopping queue whose last worker is gone is stopped, and a stopped queue
    /// with no worker left answers its stops (and stops the router when one of them disposes it).
    /// </summary>
    private void CheckStopped()
    {
        if (_status == QueueStatus.Stopping && _pool.Count == 0)
        {
            Enter(QueueStatus.Stopped, Stopped);
            Timers.Cancel(StopTimerKey);
            _telemetry.Log.Information("Queue {QueueName} stopped with {Count} items still queued (StartAsync resumes them, DrainAsync hands them back)",
                _telemetry.QueueName, _ledger.Size);
        }

        if (_status != QueueStatus.Stopped || _pool.Count > 0)
        {
            Publish();
            return;
        }

        _waiters.FailJoins(_ledger.Unfinished);
        Publish();
        _waiters.CompleteStops();
        if (_waiters.TerminateWhenStopped)
        {
            Context.Stop(Self);
        }
    }

    private void HandleGet(GetRequest<T> get)
    {
        if (get.Completion.Task.IsCompleted)
        {
            return;
        }

        _gets.Enqueue(get);
        Pump();
    }

    private void HandleTaskDone()
    {
        if (!_ledger.GetterDone())
        {
            _telemetry.Log.Error("TaskDone reached queue {QueueName} with no item taken by GetAsync outstanding; ignored", _telemetry.QueueName);
            return;
        }

        AfterItemFinished();
    }

    private void HandleItemsFinished(ItemsFinished message)
    {
        var run = _pool.Finished(Sender, message.Sequence, message.Completed, message.Failed, out var stop);
        if (!run.Settles)
        {
            return;
        }

        _ledger.SettleRun(run);
        if (stop)
        {
            Context.Stop(Sender);
        }

        AfterItemFinished();
    }

    private void HandleWorkerCrashed(WorkerCrashed message)
    {
        var run = _pool.Crashed(Sender, message.Sequence, message.Completed, message.Failed);
        if (!run.Settles)
        {
            return;
        }

        _ledger.SettleRun(run);
        if (run.Lost > 0)
        {
            _telemetry.Log.Error(message.Cause, "Worker {Worker} of queue {QueueName} crashed; restarting it, its item is reported as an error",
                Sender.Path.Name, _telemetry.QueueName);
            if (_spec?.ErrorHandler is { } handler)
            {
                var telemetry = _telemetry;
                var lost = run.LostItem;
                _ = Task.Run(() => telemetry.ReportFailureAsync(handler, message.Cause, lost));
            }
        }

        AfterItemFinished();
    }

    private void HandleWorkerTerminated(Terminated message)
    {
        if (!_pool.Remove(message.ActorRef, out var held))
        {
            return;
        }

        _ledger.SettleRun(held);
        Pump();
        CheckStopped();
    }

    private void HandleStartWorkers(StartWorkers<T> command)
    {
        RetireAllWorkers();
        _spec = command.Spec;
        SpawnWorkers(command.Spec);
        Publish();
        command.Completion.TrySetResult(true);
    }

    private void HandleDrain(DrainQueue<T> command)
    {
        var items = _ledger.DrainAll();
        if (items.Count > 0)
        {
            _telemetry.Log.Information("Queue {QueueName} handed back {Count} items", _telemetry.QueueName, items.Count);
        }

        AfterItemFinished();
        command.Completion.TrySetResult(items);
    }

    private static void RefuseDrain(DrainQueue<T> command, QueueStatus status) =>
        command.Completion.TrySetException(new QueueStateException($"Cannot drain a queue that is {QueueErrors.Describe(status)}; stop it first", status));

    private void HandleHeartbeat()
    {
        var metrics = _ledger.Metrics;
        _telemetry.Log.Debug("Queue {QueueName}: {Size}/{Capacity} queued, {InFlight} in flight, {Workers} workers, {Enqueued} enqueued, {Processed} processed",
            _telemetry.QueueName, _ledger.Size, _capacity, metrics.InFlight, _pool.ActiveCount, metrics.Enqueued, metrics.Processed);
    }

    /// <summary>Moves items to whoever can take them: waiting puts into free space, queued items to getters and free workers.</summary>
    private void Pump()
    {
        while (_status == QueueStatus.Processing)
        {
            _admission.AdmitWaiting();
            if (_ledger.Size == 0)
            {
                break;
            }

            if (_gets.Dequeue() is { } get)
            {
                var item = _ledger.TakeForGetter();
                Publish();
                if (!get.Completion.TrySetResult(item))
                {
                    _ledger.ReturnFromGetter(item);
                }

                continue;
            }

            if (!_pool.TryTakeIdle(out var workerRef, out var worker))
            {
                break;
            }

            if (_pool.Give(worker, _ledger.TakeRun(_pool.ShareOf(_ledger.Size))) is { } run)
            {
                workerRef.Tell(run); // its task has ended: the actor starts a new one
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

            if (_gets.IsEmpty && !_pool.HasIdleWorker())
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
