using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>The durable router's lifecycle (the same four behaviours as the in-memory router), drains and dead letters.</summary>
internal sealed partial class DurableRouterActor<T>
{
    /// <summary>Created (and recovering, then recovered), not started: puts and gets are refused.</summary>
    private void Idle()
    {
        HandledInEveryState();
        Command<StartQueue>(HandleStart);
        Command<StopQueue>(StopAtOnce);
        Command<JoinQueue>(join => _waiters.Join(join, _book.Unfinished));
        Command<DrainQueue<T>>(HandleDrain);
        RefusingPutsAndGets(QueueStatus.Idle);
    }

    /// <summary>Accepting puts and handing items to getters and workers.</summary>
    private void Processing()
    {
        HandledInEveryState();
        Command<FacadePut<T>>(Offer);
        Command<QueueProtocol.Put>(message => Offer(ActorPut<T>.From(message, Sender)));
        Command<BatchPut<T>>(AddBatch);
        Command<GetRequest<T>>(HandleGet);
        Command<StartQueue>(start => start.Completion.TrySetResult(true));
        Command<StopQueue>(BeginStopping);
        Command<JoinQueue>(join => _waiters.Join(join, _book.Unfinished + _writing.Count));
        Command<DrainQueue<T>>(drain => QueueErrors.RefuseDrain(drain, QueueStatus.Processing));
    }

    /// <summary>No new puts or gets; running work finishes, or is cancelled when the stop timeout runs out.</summary>
    private void Stopping()
    {
        HandledInEveryState();
        Command<StartQueue>(QueueErrors.RefuseStartWhileStopping);
        Command<StopQueue>(stop => _grace.Join(stop, Timers));
        Command<StopTimedOut>(_ => EndGrace());
        Command<AbandonWorkers>(_ => Abandon());
        Command<JoinQueue>(join => _waiters.Join(join, _book.Unfinished));
        Command<DrainQueue<T>>(drain => QueueErrors.RefuseDrain(drain, QueueStatus.Stopping));
        RefusingPutsAndGets(QueueStatus.Stopping);
    }

    /// <summary>Nothing runs; items stay in the journal until a start resumes them or a drain hands them back.</summary>
    private void Stopped()
    {
        HandledInEveryState();
        Command<StartQueue>(HandleStart);
        Command<StopQueue>(StopAtOnce);
        Command<JoinQueue>(join => LifecycleWaiters.JoinStopped(join, _book.Unfinished));
        Command<AbandonWorkers>(_ => Abandon());
        Command<DrainQueue<T>>(HandleDrain);
        RefusingPutsAndGets(QueueStatus.Stopped);
    }

    private void HandledInEveryState()
    {
        Command<DurableItemDone>(HandleDone);
        Command<FlushWrites>(_ => Flush());
        Command<DueTick>(_ => HandleDue());
        Command<TaskDoneSignal>(_ => HandleTaskDone());
        Command<PutTimedOut<T>>(message => TimedOut(message.Put));
        Command<CancelPut<T>>(message =>
        {
            if (_waitingPuts.Remove(message.Put))
            {
                Timers.Cancel(message.Put);
            }
        });
        Command<CancelGet<T>>(message => _getters.Remove(message.Get));
        Command<StartWorkers<T>>(command =>
        {
            if (_status == QueueStatus.Stopping)
            {
                QueueErrors.RefuseWorkersWhileStopping(command); // as the in-memory queue (README: "Replacing workers")
                return;
            }

            _spec = command.Spec;
            Pump();
            command.Completion.TrySetResult(true);
        });
        Command<QueueProtocol.GetStatus>(_ => TellStatus());
        Command<DisposalOverdue>(_ =>
        {
            // The disposal's bound passed with the router still waiting: a restart took its stop over and armed its timers
            // afresh (the grace period's end, then its timeout again), or the stop waited for a recovery. Before, a crash
            // after the grace period stretched the disposal by the restart's recovery and up to a whole timeout more.
            if (_waiters.TerminateWhenStopped)
            {
                Abandon();
            }
        });
        Command<DeadLetterQuery<T>>(query => query.Completion.TrySetResult(_book.DeadLetters(Decode)));
        Command<DeadLetterChange>(change => ChangeDeadLetters(change.Ids, change.Purge, count => change.Completion.TrySetResult(count),
            error => change.Completion.TrySetException(error)));
        Command<QueueProtocol.ListDeadLetters>(message =>
            Sender.Tell(new QueueProtocol.DeadLetterList(message.CorrelationId, [.. _book.DeadLetters(Decode)])));
        Command<QueueProtocol.RequeueDeadLetters>(message => ReplyChanged(message.CorrelationId, message.Ids, purge: false));
        Command<QueueProtocol.PurgeDeadLetters>(message => ReplyChanged(message.CorrelationId, message.Ids, purge: true));
        _housekeeping.Register((type, handler) => Command(type, handler, null));
    }

    /// <summary>Answers a <see cref="QueueProtocol.GetStatus"/>.</summary>
    private void TellStatus() =>
        Sender.Tell(new QueueProtocol.Status(_status, _book.Size, _capacity, _status == QueueStatus.Processing ? _spec?.Count ?? 0 : 0,
            _book.Metrics with { BackpressureEvents = _backpressure }));

    private void RefusingPutsAndGets(QueueStatus status)
    {
        Command<FacadePut<T>>(put => QueueErrors.Refuse(put, status));
        Command<QueueProtocol.Put>(message => QueueErrors.Refuse<T>(message, Sender, status));
        Command<BatchPut<T>>(batch => QueueErrors.Refuse(batch, status));
        Command<GetRequest<T>>(get => QueueErrors.Refuse(get, status));
    }

    private void Enter(QueueStatus status, Action behaviour)
    {
        _status = status;
        Become(behaviour);
        Publish(); // before any refusal or answer the move causes: its caller reads the new status
    }

    private void HandleStart(StartQueue command)
    {
        Enter(QueueStatus.Processing, Processing);
        if (_runCancellation.IsCancellationRequested)
        {
            _runCancellation = new CancellationTokenSource();
        }

        _telemetry.Started(_book.Size);
        Pump();
        command.Completion.TrySetResult(true);
    }

    private void BeginStopping(StopQueue command)
    {
        _waiters.AddStopper(command);
        Enter(QueueStatus.Stopping, Stopping);
        _telemetry.Stopping(_busy, _book.Size);
        RefuseWaiting(QueueStatus.Stopping, new QueueStateException(QueueErrors.CannotGet(QueueStatus.Stopping), QueueStatus.Stopping));
        _grace.Begin(command.Timeout, Timers);
        CheckStopped();
    }

    /// <summary>The grace period is over (a stop's timeout ran out): the running tries are cancelled.</summary>
    /// <remarks>
    /// Then a disposal waits for the cancelled tries at most its own timeout (<see cref="StopGrace.AbandonAfter"/>): a
    /// worker that ignores its token would otherwise hold it for ever, and the router stops without them (<see cref="Abandon"/>).
    /// Their items stay in the journal without an end, so they run again when the queue is opened again; a try that
    /// finishes after that is not journaled (its item may run twice, as after a crash).
    /// </remarks>
    private void EndGrace()
    {
        _runCancellation.Cancel();
        _grace.Ended(Timers);
    }

    /// <summary>
    /// A disposal waited its timeout after the grace period: the router stops without the tries still running, and
    /// without waiting for the journal any longer: what gathered for the next write goes in one last write, and with a
    /// write under way the router answers every caller now and lingers only until the journal answers it
    /// (<see cref="Detach"/>). PostStop answers the stops.
    /// </summary>
    private void Abandon()
    {
        if (_abandoned)
        {
            return;
        }

        _abandoned = true;
        if (_busy > 0)
        {
            _telemetry.AbandonedTries(_busy);
        }

        if (!_writeInFlight && !HousekeepingUnderWay)
        {
            Flush(); // the ends of the tries that returned: written, their items do not run again when the queue is opened again
        }

        if (_writeInFlight)
        {
            Detach();
            return;
        }

        Context.Stop(Self);
    }

    private void StopAtOnce(StopQueue command)
    {
        _waiters.AddStopper(command);
        Enter(QueueStatus.Stopped, Stopped);
        if (_busy > 0 || Writing)
        {
            // Stopped with tries still running (cancelled when a restart failed to resume), or a write (a drain's, a dead
            // letter's change) the journal has not answered: a disposal waits for them at most its timeout.
            _grace.AbandonAfter(Timers);
        }

        CheckStopped();
    }

    /// <summary>A stopping queue whose last task ended is stopped; a stopped queue answers its stops (and stops the router on dispose).</summary>
    private void CheckStopped()
    {
        if (_status == QueueStatus.Stopping && _busy == 0 && !Writing)
        {
            Enter(QueueStatus.Stopped, Stopped);
            _grace.Stopped(Timers);
            _telemetry.Stopped(_book.Size);
        }

        Publish();
        if (_status != QueueStatus.Stopped || _busy > 0 || Writing)
        {
            return; // a stop is answered once every end is journaled
        }

        _grace.Settled(Timers);
        _waiters.FailJoins(_book.Unfinished);
        if (_waiters.TerminateWhenStopped)
        {
            // The items getters hold are handed back before the disposal is answered, so a caller whose disposal has
            // completed reads them queued, not in flight; before, only PostStop did, after the answer (Review/SecondReadingRound44Tests).
            ReturnRunning();
            Publish();

            // Before the dispose is answered, so a queue of the same name may open as soon as it is.
            ReleaseName();
            Context.Stop(Self);
        }

        _waiters.CompleteStops();
    }

    /// <summary>Refuses the waiting puts and getters: the queue is now <paramref name="status"/>.</summary>
    private void RefuseWaiting(QueueStatus status, Exception getError)
    {
        var refusal = QueueErrors.CannotPut(status);
        while (_waitingPuts.Dequeue() is { } put)
        {
            Timers.Cancel(put);
            put.Refused(status, refusal);
        }

        while (_waitingBatches.TryDequeue(out var waiting))
        {
            var batch = waiting.Batch;
            RefuseBatch(batch, () => new QueueStateException($"{refusal} ({batch.Admitted} of the batch's {batch.Items.Count} items were accepted)", status));
        }

        while (_getters.Dequeue() is { } get)
        {
            get.Completion.TrySetException(getError);
        }
    }

    /// <summary>
    /// Hands back every waiting item, once their removal is journaled; a refused write hands back nothing (the items stay).
    /// The items leave the run order at once: a start or a second drain before the write ends must not take them too
    /// (before, a start ran the items this drain then handed back, and a second drain handed them back twice).
    /// </summary>
    private void HandleDrain(DrainQueue<T> command)
    {
        // An item that cannot be read back cannot be handed back either: it becomes a dead letter, with the reason, and
        // the last workers' error handler hears of it (round 45).
        var all = _book.Waiting(Decode);
        ReportDrained([.. all.Where(entry => entry.Unreadable is not null).Select(entry => DeadLetterUnreadable(entry.Id, entry.Unreadable!))]);

        var waiting = all.Where(entry => entry.Unreadable is null).ToList();
        if (waiting.Count == 0)
        {
            command.Completion.TrySetResult([]);
            return;
        }

        var (remaining, told) = (waiting.Count, false);
        foreach (var (id, _, _) in waiting)
        {
            _book.Draining(id);
            WriteLater(new ItemRemoved(id, RemovalReason.Drained), answer: --remaining > 0 ? null : () =>
            {
                foreach (var (drained, _, _) in waiting)
                {
                    _traces.Remove(drained);
                }

                _telemetry.HandedBack(waiting.Count);
                command.Completion.TrySetResult([.. waiting.Select(entry => entry.Item)]);
            }, refused: error =>
            {
                // Every removal of the drain is in the one refused record: each item goes back to its place, and the caller hears once.
                _book.Return(id);
                if (!told)
                {
                    told = true;
                    command.Completion.TrySetException(error);
                }
            });
        }
    }

    private void ReplyChanged(long correlationId, IReadOnlyList<long>? ids, bool purge)
    {
        var sender = Sender;
        // A change the journal refused changed nothing: an actor caller hears 0 (the facade's caller gets the error).
        ChangeDeadLetters(ids, purge, count => sender.Tell(new QueueProtocol.DeadLettersChanged(correlationId, count)),
            _ => sender.Tell(new QueueProtocol.DeadLettersChanged(correlationId, 0)));
    }

    /// <summary>
    /// Requeues or purges the named dead letters (all when <paramref name="ids"/> is <c>null</c>); answers once the change
    /// is journaled, or tells <paramref name="refused"/> (once) when the journal refused it and nothing changed.
    /// </summary>
    private void ChangeDeadLetters(IReadOnlyList<long>? ids, bool purge, Action<int> answer, Action<Exception> refused)
    {
        // A dead letter whose change is being written is no longer one to change: a second purge or requeue sent before
        // the first was written took it too, and its event, applied twice, threw in the write's callback and in every
        // recovery after it (purge: the queue could not be opened again) or counted the item twice (requeue).
        var dead = _book.DeadIds(ids).Where(id => !_deadChanging.Contains(id)).ToList();
        if (dead.Count == 0)
        {
            answer(0);
            return;
        }

        // Every event carries the refusal, so a refused write applies none of them; the caller hears it once.
        var (remaining, told) = (dead.Count, false);
        foreach (var id in dead)
        {
            IDurableQueueMessage change = purge ? new ItemRemoved(id, RemovalReason.Purged) : new ItemRequeued(id);
            _deadChanging.Add(id);
            WriteLater(change, apply: () =>
                {
                    _deadChanging.Remove(id);
                    _book.Apply(change);
                },
                answer: --remaining > 0 ? null : () => answer(dead.Count),
                refused: error =>
                {
                    _deadChanging.Remove(id);
                    if (!told)
                    {
                        told = true;
                        refused(error);
                    }
                });
        }
    }
}
