using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>The router's lifecycle: its four behaviours, and the moves between them.</summary>
internal sealed partial class QueueRouterActor<T>
{
    /// <summary>Created, not started: puts and gets are refused; workers may be started ahead of the start.</summary>
    private void Idle()
    {
        HandledInEveryState();
        Receive<StartQueue>(HandleStart);
        Receive<StopQueue>(StopAtOnce);
        Receive<JoinQueue>(join => _waiters.Join(join, _ledger.Unfinished));
        Receive<DrainQueue<T>>(HandleDrain);
        Receive<StartWorkers<T>>(HandleStartWorkers);
        RefusingPutsAndGets(QueueStatus.Idle);
    }

    /// <summary>Accepting puts and handing items to getters and free workers.</summary>
    private void Processing()
    {
        HandledInEveryState();
        Receive<FacadePut<T>>(Offer);
        Receive<QueueProtocol.Put>(message => Offer(message.Priority == 0 && message.NotBefore is null
            ? ActorPut<T>.From(message, Sender)
            : RefuseTiming(message)));
        Receive<BatchPut<T>>(batch =>
        {
            _admission.AddBatch(batch);
            Pump();
        });
        Receive<GetRequest<T>>(HandleGet);
        Receive<Heartbeat>(_ => _telemetry.Heartbeat(_ledger.Size, _capacity, _ledger.Metrics, _pool.ActiveCount));
        Receive<StartQueue>(start => start.Completion.TrySetResult(true));
        Receive<StopQueue>(BeginStopping);
        Receive<JoinQueue>(join => _waiters.Join(join, _ledger.Unfinished));
        Receive<DrainQueue<T>>(drain => QueueErrors.RefuseDrain(drain, QueueStatus.Processing));
        Receive<StartWorkers<T>>(HandleStartWorkers);
    }

    /// <summary>
    /// No new puts or gets; retiring workers finish the item in hand until the last is gone or the stop timeout cancels
    /// them. New workers are refused: nothing would retire them, and the stop waits for the last worker to go.
    /// </summary>
    private void Stopping()
    {
        HandledInEveryState();
        Receive<StartQueue>(QueueErrors.RefuseStartWhileStopping);
        Receive<StartWorkers<T>>(QueueErrors.RefuseWorkersWhileStopping);
        Receive<StopQueue>(stop => _grace.Join(stop, Timers));
        Receive<StopTimedOut>(_ => EndGrace());
        Receive<AbandonWorkers>(_ =>
        {
            _telemetry.AbandonedWorkers(_pool.Busy().Count);
            Context.Stop(Self); // PostStop settles what they held
        });
        Receive<JoinQueue>(join => _waiters.Join(join, _ledger.Unfinished));
        Receive<DrainQueue<T>>(drain => QueueErrors.RefuseDrain(drain, QueueStatus.Stopping));
        RefusingPutsAndGets(QueueStatus.Stopping);
    }

    /// <summary>
    /// No workers run; items left stay queued until a start resumes them or a drain hands them back. Workers may be
    /// started ahead of the start, except while a stop still waits for the last ones to go (as in <see cref="Stopping"/>).
    /// </summary>
    private void Stopped()
    {
        HandledInEveryState();
        Receive<StartQueue>(HandleStart);
        Receive<StopQueue>(StopAtOnce);
        Receive<JoinQueue>(join => LifecycleWaiters.JoinStopped(join, _ledger.Unfinished));
        Receive<DrainQueue<T>>(HandleDrain);
        Receive<StartWorkers<T>>(command =>
        {
            if (_waiters.StopsWaiting)
            {
                QueueErrors.RefuseWorkersWhileStopping(command);
            }
            else
            {
                HandleStartWorkers(command);
            }
        });
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
        Receive<CancelGet<T>>(message => _handOut.RemoveGetter(message.Get));
        Receive<WorkerCrashed>(HandleWorkerCrashed);
        Receive<Terminated>(HandleWorkerTerminated);
        Receive<QueueProtocol.GetStatus>(_ =>
            Sender.Tell(new QueueProtocol.Status(_status, _ledger.Size, _capacity, _pool.ActiveCount, _ledger.Metrics)));
        // A queue in memory keeps no dead letters: a failed item is reported to the error handler and counted.
        Receive<QueueProtocol.ListDeadLetters>(message => Sender.Tell(new QueueProtocol.DeadLetterList(message.CorrelationId, [])));
        Receive<QueueProtocol.RequeueDeadLetters>(message => Sender.Tell(new QueueProtocol.DeadLettersChanged(message.CorrelationId, 0)));
        Receive<QueueProtocol.PurgeDeadLetters>(message => Sender.Tell(new QueueProtocol.DeadLettersChanged(message.CorrelationId, 0)));
    }

    /// <summary>A put with a priority or a time reached a queue in memory, which has neither: refused, never silently run in order.</summary>
    private PendingPut<T>? RefuseTiming(QueueProtocol.Put message)
    {
        Sender.Tell(new QueueProtocol.RejectedInvalid(message.CorrelationId,
            $"Priority ({message.Priority}) and NotBefore ({message.NotBefore}) need a queue with a QueueDurability; QueueDurability.InMemory keeps the items in memory only"));
        return null;
    }

    /// <summary>Puts, batches and gets are refused with <paramref name="status"/>; one its caller has already withdrawn is dropped.</summary>
    private void RefusingPutsAndGets(QueueStatus status)
    {
        Receive<FacadePut<T>>(put => QueueErrors.Refuse(put, status));
        Receive<QueueProtocol.Put>(message => QueueErrors.Refuse<T>(message, Sender, status));
        Receive<BatchPut<T>>(batch => QueueErrors.Refuse(batch, status));
        Receive<GetRequest<T>>(get => QueueErrors.Refuse(get, status));
    }

    /// <summary>Moves to <paramref name="status"/>: its behaviour answers from the next message on.</summary>
    /// <remarks>
    /// Published at once, as by the durable router, before any refusal or answer the move causes: its caller reads the
    /// new status. Before, a put a stop refused read Processing (Review/RouterSystemEndRound44Tests).
    /// </remarks>
    private void Enter(QueueStatus status, Action behaviour)
    {
        _status = status;
        Become(behaviour);
        Publish();
    }

    /// <summary>From idle or stopped: processing, with the last workers respawned if they were stopped.</summary>
    private void HandleStart(StartQueue command)
    {
        Enter(QueueStatus.Processing, Processing);
        _telemetry.Started(_ledger.Size);
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
        // The workers are told first: once Status reads Stopping, no worker starts another item of its run (before, a run
        // whose item in hand ended between the published status and its worker's retirement went on with the rest:
        // WorkerBatchTests.A_stop_lets_the_item_in_hand_finish… failed so in CI of round 48).
        RetireAllWorkers();
        Enter(QueueStatus.Stopping, Stopping);
        _admission.RevokeCredits();
        Timers.Cancel(HeartbeatTimerKey);
        _telemetry.Stopping(_ledger.WorkerInFlight, _ledger.Size);
        _admission.RefuseAll(QueueStatus.Stopping, cancelTimers: true);
        _handOut.RefuseGetters(new QueueStateException(QueueErrors.CannotGet(QueueStatus.Stopping), QueueStatus.Stopping));
        _grace.Begin(command.Timeout, Timers);
        CheckStopped();
    }

    /// <summary>The grace period is over (a stop's timeout ran out, or its token fired): the work in hand is cancelled.</summary>
    /// <remarks>
    /// Then a disposal waits for the cancelled work at most its own timeout (<see cref="StopGrace.AbandonAfter"/>): after
    /// it the router stops without the workers, and its <see cref="PostStop"/> settles their runs as when the actor system
    /// ends: what their tasks finished counts, and the rest is reported as discarded with the items still queued.
    /// </remarks>
    private void EndGrace()
    {
        CancelInFlight();
        _grace.Ended(Timers);
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

        _telemetry.StopTimedOut(busy.Count);
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
            _grace.Stopped(Timers);
            _grace.Settled(Timers);
            _telemetry.Stopped(_ledger.Size);
        }

        if (_status != QueueStatus.Stopped || _pool.Count > 0)
        {
            Publish();
            return;
        }

        _waiters.FailJoins(_ledger.Unfinished);
        if (_waiters.TerminateWhenStopped && (_ledger.Size > 0 || _ledger.HeldByGetters > 0))
        {
            // Disposed with items still queued, or held by getters: each is reported as failed, and the disposal completes
            // once they are, or after the stop timeout (and by twice the stop timeout after the disposal came, at the latest).
            _waiters.CompleteStopsAfter(DiscardQueued(), _telemetry.DiscardedStillReporting);
        }
        else
        {
            Publish();
            _waiters.CompleteStops();
        }

        if (_waiters.TerminateWhenStopped)
        {
            Context.Stop(Self);
        }
    }

    private void HandleDrain(DrainQueue<T> command)
    {
        var items = _ledger.DrainAll();
        if (items.Count > 0)
        {
            _telemetry.HandedBack(items.Count);
        }

        AfterItemFinished();
        command.Completion.TrySetResult(items);
    }
}
