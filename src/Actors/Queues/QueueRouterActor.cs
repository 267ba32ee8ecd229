using ActorQueue.Coordination;
using ActorQueue.Runtime;
using ActorQueue.Telemetry;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>
/// The one owner of a queue: its bounded buffer, the puts waiting for space, the getters waiting for items, the
/// lifecycle, the counters and the pool of worker children. Workers pull, so an item leaves the buffer only
/// when a worker or getter is free for it; nothing is ever dropped: an item is processed, reported as failed,
/// put back at the head (stop timeout, lost worker), or handed back by a drain.
/// </summary>
internal sealed class QueueRouterActor<T> : ReceiveActor, IWithTimers
{
    private const string StopTimerKey = "stop-timeout";
    private const string HeartbeatTimerKey = "heartbeat";

    private readonly int _capacity;

    /// <summary>The most items one worker gets at once (<c>actorqueue.queue.worker-batch</c>).</summary>
    private readonly int _workerBatch;
    private readonly TimeSpan _heartbeatPeriod;
    private readonly string _workerDispatcher;
    private readonly QueueTelemetry _telemetry;
    private readonly QueueCounters _counters;

    /// <summary>Credited puts from the facade: taken in before every message.</summary>
    private readonly PutInbox<T> _inbox;

    /// <summary>Accepted items not yet taken, oldest first.</summary>
    private readonly ItemDeque<T> _buffer;

    /// <summary>Puts waiting for space, oldest first.</summary>
    private readonly WaiterQueue<PendingPut<T>> _puts = new();

    /// <summary>Batches waiting for space, oldest first; the head may be partly admitted.</summary>
    private readonly Queue<BatchPut<T>> _batches = new();

    /// <summary>Batches fully admitted during this message, answered after the counts are published.</summary>
    private readonly List<BatchPut<T>> _admittedBatches = [];

    /// <summary><c>GetAsync</c> callers waiting for an item, oldest first.</summary>
    private readonly WaiterQueue<GetRequest<T>> _gets = new();

    /// <summary>Every live worker child and what it holds.</summary>
    private readonly Dictionary<IActorRef, WorkerState> _workers = new(ActorRefComparer.Instance);

    /// <summary>Free workers, in the order they became free (entries for workers since busy or retired are skipped).</summary>
    private readonly Queue<IActorRef> _idle = new();

    private readonly List<JoinQueue> _joiners = [];
    private readonly List<StopQueue> _stoppers = [];

    private QueueStatus _status = QueueStatus.Idle;

    /// <summary>The latest worker spec, used again by a restart after a stop.</summary>
    private WorkerSpec<T>? _spec;

    /// <summary>Numbers worker generations, for unique child names.</summary>
    private int _generation;

    private long _enqueued;
    private long _processed;
    private long _errors;
    private long _backpressure;
    private long _drained;

    /// <summary>The last run sequence number handed to a worker.</summary>
    private long _lastSequence;

    /// <summary>Live workers that take new items (not retiring).</summary>
    private int _activeWorkers;

    /// <summary>Items with workers now.</summary>
    private int _workerInFlight;

    /// <summary>Items taken by <c>GetAsync</c> callers and not yet marked done.</summary>
    private int _manualInFlight;

    /// <summary>Places reserved for credited puts: credits granted and not taken back, plus items put with them and not taken in yet.</summary>
    private int _reserved;

    /// <summary>The depth last reported to the depth instrument.</summary>
    private int _reportedDepth;

    /// <summary>Whether the router stops itself once stopped (dispose).</summary>
    private bool _terminateWhenStopped;

    public QueueRouterActor(int capacity, int workerBatch, TimeSpan heartbeatPeriod, string workerDispatcher, QueueTelemetry telemetry, QueueCounters counters,
                            PutInbox<T> inbox)
    {
        _inbox = inbox;
        // A restarted router starts with no credits out; items already put with old ones are still taken in.
        inbox.Revoke();
        _reserved = inbox.Pending;
        _capacity = capacity;
        _workerBatch = workerBatch;
        _heartbeatPeriod = heartbeatPeriod;
        _workerDispatcher = workerDispatcher;
        _telemetry = telemetry;
        _counters = counters;
        _buffer = new ItemDeque<T>(Math.Min(capacity, 1024));

        Receive<InboxSignal<T>>(_ => { }); // the inbox is taken in before every message
        Receive<FacadePut<T>>(Offer);
        Receive<BatchPut<T>>(HandleBatchPut);
        Receive<QueueProtocol.Put>(HandleProtocolPut);
        Receive<PutTimedOut<T>>(HandlePutTimedOut);
        Receive<CancelPut<T>>(HandleCancelPut);
        Receive<GetRequest<T>>(HandleGet);
        Receive<CancelGet<T>>(message => _gets.Remove(message.Get));
        Receive<TaskDoneSignal>(_ => HandleTaskDone());
        Receive<RequestWork>(_ => HandleRequestWork());
        Receive<ItemsFinished>(HandleItemsFinished);
        Receive<WorkerCrashed>(HandleWorkerCrashed);
        Receive<Terminated>(HandleWorkerTerminated);
        Receive<StartQueue>(HandleStart);
        Receive<StopQueue>(HandleStop);
        Receive<StopTimedOut>(_ => HandleStopTimedOut());
        Receive<StartWorkers<T>>(HandleStartWorkers);
        Receive<JoinQueue>(HandleJoin);
        Receive<DrainQueue<T>>(HandleDrain);
        Receive<QueueProtocol.GetStatus>(_ => Sender.Tell(new QueueProtocol.Status(_status, _buffer.Count, _capacity, _activeWorkers, CurrentMetrics())));
        Receive<Heartbeat>(_ => HandleHeartbeat());
    }

    /// <inheritdoc />
    public ITimerScheduler Timers { get; set; } = null!;

    /// <summary>Accepted items not finished: in the buffer, with workers, or with getters.</summary>
    private int Unfinished => _buffer.Count + _workerInFlight + _manualInFlight;

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
        if (TakeInbox())
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
        _reserved -= _inbox.Revoke();
        _inbox.StopLooking();
        TakeInbox();
        var disposed = QueueErrors.Disposed();
        _puts.DrainAll(put => put.Refused(QueueStatus.Stopped, QueueErrors.CannotPut(QueueStatus.Stopped)));
        _gets.DrainAll(get => get.Completion.TrySetException(disposed));
        RefuseBatches(QueueStatus.Stopped);
        foreach (var joiner in _joiners)
        {
            joiner.Completion.TrySetException(disposed);
        }

        if (_buffer.Count > 0)
        {
            _telemetry.Log.Warning("Queue {QueueName} disposed with {Count} items still queued; they were not processed", _telemetry.QueueName, _buffer.Count);
        }

        ActorQueueTelemetry.QueueDepthCounter.Add(-_reportedDepth, _telemetry.Tag);
        foreach (var stopper in _stoppers)
        {
            stopper.Completion.TrySetResult(true);
        }

        base.PostStop();
    }

    private void Offer(PendingPut<T> put)
    {
        if (put.IsAbandoned)
        {
            return;
        }

        if (_status != QueueStatus.Processing)
        {
            put.Refused(_status, QueueErrors.CannotPut(_status));
            return;
        }

        if (_puts.IsEmpty && HasSpace())
        {
            Accept(put);
            Pump();
            return;
        }

        if (put.Timeout == TimeSpan.Zero)
        {
            Backpressure(put);
            Publish();
            return;
        }

        _puts.Enqueue(put);
        if (put.Timeout != Timeout.InfiniteTimeSpan)
        {
            Timers.StartSingleTimer(put, new PutTimedOut<T>(put), put.Timeout);
        }
    }

    private void HandleBatchPut(BatchPut<T> batch)
    {
        if (_status != QueueStatus.Processing)
        {
            batch.Completion.TrySetException(new QueueStateException(QueueErrors.CannotPut(_status), _status));
            return;
        }

        _batches.Enqueue(batch);
        Pump();
    }

    private void RefuseBatches(QueueStatus status)
    {
        while (_batches.TryDequeue(out var batch))
        {
            batch.Completion.TrySetException(new QueueStateException(
                $"{QueueErrors.CannotPut(status)} ({batch.Admitted} of the batch's {batch.Items.Count} items were accepted)", status));
        }
    }

    private void HandleProtocolPut(QueueProtocol.Put message)
    {
        if (message.Item is not T item)
        {
            if (message.Item is not null || default(T) is not null)
            {
                Sender.Tell(new QueueProtocol.RejectedInvalid(message.CorrelationId,
                    $"The item is a {message.Item?.GetType().FullName ?? "null"}; this queue takes {typeof(T).FullName}"));
                return;
            }

            item = default!;
        }

        if (!Timeouts.TryNormalize(message.Timeout ?? TimeSpan.Zero, out var timeout))
        {
            Sender.Tell(new QueueProtocol.RejectedInvalid(message.CorrelationId, Timeouts.Invalid("Timeout", timeout)));
            return;
        }

        Offer(new ActorPut<T>(item, timeout, Sender, message.CorrelationId));
    }

    private void HandlePutTimedOut(PutTimedOut<T> message)
    {
        if (_puts.Remove(message.Put))
        {
            Backpressure(message.Put);
            Publish();
        }
    }

    private void HandleCancelPut(CancelPut<T> message)
    {
        if (_puts.Remove(message.Put))
        {
            Timers.Cancel(message.Put);
        }
    }

    private void HandleGet(GetRequest<T> get)
    {
        if (get.Completion.Task.IsCompleted)
        {
            return;
        }

        if (_status != QueueStatus.Processing)
        {
            get.Completion.TrySetException(new QueueStateException(QueueErrors.CannotGet(_status), _status));
            return;
        }

        _gets.Enqueue(get);
        Pump();
    }

    private void HandleTaskDone()
    {
        if (_manualInFlight == 0)
        {
            _telemetry.Log.Error("TaskDone reached queue {QueueName} with no item taken by GetAsync outstanding; ignored", _telemetry.QueueName);
            return;
        }

        _manualInFlight--;
        _processed++;
        ActorQueueTelemetry.QueueProcessedCounter.Add(1, _telemetry.Tag);
        AfterItemFinished();
    }

    private void HandleRequestWork()
    {
        if (_workers.TryGetValue(Sender, out var worker) && !worker.Retiring)
        {
            MarkIdle(Sender, worker);
            Pump();
        }
    }

    private void HandleItemsFinished(ItemsFinished message)
    {
        if (!TryTakeInFlight(Sender, message.Sequence, out var worker, out var items))
        {
            return; // a run of a crashed incarnation, already reported
        }

        CountFinished(message.Completed, message.Failed);
        ReturnToHead(items, message.Completed);
        if (worker.Retiring)
        {
            Context.Stop(Sender);
        }
        else
        {
            MarkIdle(Sender, worker);
        }

        AfterItemFinished();
    }

    private void HandleWorkerCrashed(WorkerCrashed message)
    {
        if (!TryTakeInFlight(Sender, message.Sequence, out var worker, out var items))
        {
            if (worker is { HasItems: true, Run.IsStoppedForCrash: true })
            {
                // The report names the run before the one handed over to the task just then (the run it holds is the
                // one the crash stopped): the task had not taken it, so it starts none of its items; they go back to
                // the head. A run sent to the actor instead is a new one, which the restarted worker will start.
                ReturnToHead(TakeItems(worker), 0);
                AfterItemFinished();
            }

            return;
        }

        CountFinished(message.Completed, message.Failed);
        if (message.Completed < items.Length)
        {
            var lost = items[message.Completed];
            CountFinished(1, 1);
            _telemetry.Log.Error(message.Cause, "Worker {Worker} of queue {QueueName} crashed; restarting it, its item is reported as an error",
                Sender.Path.Name, _telemetry.QueueName);
            if (_spec?.ErrorHandler is { } handler)
            {
                var telemetry = _telemetry;
                _ = Task.Run(() => telemetry.ReportFailureAsync(handler, message.Cause, lost));
            }

            ReturnToHead(items, message.Completed + 1);
        }

        AfterItemFinished();
    }

    /// <summary>Takes the items a worker holds for run <paramref name="sequence"/>, if it still does; they are no longer in flight.</summary>
    private bool TryTakeInFlight(IActorRef workerRef, long sequence, out WorkerState worker, out T[] items)
    {
        if (!_workers.TryGetValue(workerRef, out worker!) || !worker.HasItems || worker.Sequence != sequence)
        {
            items = [];
            return false;
        }

        items = TakeItems(worker);
        return true;
    }

    /// <summary>Takes every item <paramref name="worker"/> holds; they are no longer in flight.</summary>
    private T[] TakeItems(WorkerState worker)
    {
        var items = worker.TakeItems();
        _workerInFlight -= items.Length;
        return items;
    }

    /// <summary>Puts <paramref name="items"/> from index <paramref name="from"/> on back at the head of the queue, in their order.</summary>
    private void ReturnToHead(T[] items, int from)
    {
        for (var i = items.Length - 1; i >= from; i--)
        {
            _buffer.PushFront(items[i]);
        }
    }

    private void HandleWorkerTerminated(Terminated message)
    {
        if (!_workers.Remove(message.ActorRef, out var worker))
        {
            return;
        }

        if (!worker.Retiring)
        {
            _activeWorkers--;
        }

        if (worker.HasItems)
        {
            // A worker gone with work in hand: the items were not finished, so they go back to the head.
            ReturnToHead(TakeItems(worker), 0);
        }

        Pump();
        CheckStopped();
    }

    private void HandleStart(StartQueue command)
    {
        switch (_status)
        {
            case QueueStatus.Processing:
                command.Completion.TrySetResult(true);
                return;
            case QueueStatus.Stopping:
                command.Completion.TrySetException(new QueueStateException("Cannot start a queue while it is stopping; await StopAsync first", _status));
                return;
        }

        _status = QueueStatus.Processing;
        _telemetry.Log.Information("Queue {QueueName} started with {Count} items queued", _telemetry.QueueName, _buffer.Count);
        if (_spec is not null && _activeWorkers == 0)
        {
            SpawnWorkers(_spec);
        }

        Timers.StartPeriodicTimer(HeartbeatTimerKey, Heartbeat.Instance, _heartbeatPeriod);
        Pump();
        command.Completion.TrySetResult(true);
    }

    private void HandleStop(StopQueue command)
    {
        _terminateWhenStopped |= command.Terminate;
        _stoppers.Add(command);
        switch (_status)
        {
            case QueueStatus.Idle:
            case QueueStatus.Stopped:
                _status = QueueStatus.Stopped;
                RetireAllWorkers();
                CheckStopped();
                return;
            case QueueStatus.Stopping:
                return;
        }

        _status = QueueStatus.Stopping;
        _reserved -= _inbox.Revoke();
        Timers.Cancel(HeartbeatTimerKey);
        _telemetry.Log.Information("Queue {QueueName} stopping: {InFlight} in flight, {Count} queued", _telemetry.QueueName, _workerInFlight, _buffer.Count);
        var refusal = QueueErrors.CannotPut(QueueStatus.Stopping);
        _puts.DrainAll(put =>
        {
            Timers.Cancel(put);
            put.Refused(QueueStatus.Stopping, refusal);
        });
        _gets.DrainAll(get => get.Completion.TrySetException(new QueueStateException(QueueErrors.CannotGet(QueueStatus.Stopping), QueueStatus.Stopping)));
        RefuseBatches(QueueStatus.Stopping);
        RetireAllWorkers();
        if (command.Timeout != Timeout.InfiniteTimeSpan)
        {
            Timers.StartSingleTimer(StopTimerKey, StopTimedOut.Instance, command.Timeout);
        }

        CheckStopped();
    }

    private void HandleStopTimedOut()
    {
        var busy = _workers.Where(w => w.Value.HasItems).Select(w => w.Key).ToList();
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

    private void HandleStartWorkers(StartWorkers<T> command)
    {
        RetireAllWorkers();
        _spec = command.Spec;
        SpawnWorkers(command.Spec);
        Publish();
        command.Completion.TrySetResult(true);
    }

    private void HandleJoin(JoinQueue command)
    {
        var unfinished = Unfinished;
        if (unfinished == 0)
        {
            command.Completion.TrySetResult(true);
        }
        else if (_status == QueueStatus.Stopped)
        {
            command.Completion.TrySetException(StoppedWithPending(unfinished));
        }
        else
        {
            _joiners.Add(command);
        }
    }

    private void HandleDrain(DrainQueue<T> command)
    {
        if (_status is QueueStatus.Processing or QueueStatus.Stopping)
        {
            command.Completion.TrySetException(new QueueStateException(
                $"Cannot drain a queue that is {QueueErrors.Describe(_status)}; stop it first", _status));
            return;
        }

        var items = _buffer.PopAll();
        _drained += items.Count;
        if (items.Count > 0)
        {
            _telemetry.Log.Information("Queue {QueueName} handed back {Count} items", _telemetry.QueueName, items.Count);
        }

        AfterItemFinished();
        command.Completion.TrySetResult(items);
    }

    private void HandleHeartbeat() =>
        _telemetry.Log.Debug("Queue {QueueName}: {Size}/{Capacity} queued, {InFlight} in flight, {Workers} workers, {Enqueued} enqueued, {Processed} processed",
            _telemetry.QueueName, _buffer.Count, _capacity, _workerInFlight + _manualInFlight, _activeWorkers, _enqueued, _processed);

    /// <summary>Moves items to whoever can take them: waiting puts into free space, queued items to getters and free workers.</summary>
    private void Pump()
    {
        while (_status == QueueStatus.Processing)
        {
            while (!_puts.IsEmpty && HasSpace() && _puts.Dequeue() is { } put)
            {
                Timers.Cancel(put);
                Accept(put);
            }

            AdmitBatches();

            if (_buffer.Count == 0)
            {
                break;
            }

            if (_gets.Dequeue() is { } get)
            {
                var item = _buffer.PopFront();
                _manualInFlight++;
                Publish();
                if (!get.Completion.TrySetResult(item))
                {
                    _manualInFlight--;
                    _buffer.PushFront(item);
                }

                continue;
            }

            if (!TryTakeIdleWorker(out var workerRef, out var worker))
            {
                break;
            }

            var items = new T[ShareForOneWorker()];
            for (var i = 0; i < items.Length; i++)
            {
                items[i] = _buffer.PopFront();
            }

            var sequence = ++_lastSequence;
            worker.Give(items, sequence);
            _workerInFlight += items.Length;
            // The worker's task has reported its last run: hand it this one, or start a task through the actor.
            if (worker.Run?.TryHandOver(items, sequence) != true)
            {
                worker.Run = new WorkerRun<T>(items, sequence);
                workerRef.Tell(worker.Run);
            }
        }

        Publish();
        foreach (var batch in _admittedBatches)
        {
            batch.Completion.TrySetResult(true);
        }

        _admittedBatches.Clear();
    }

    /// <summary>
    /// How many queued items a free worker takes: its share of the backlog among the active workers, at least one and
    /// at most the configured batch, so a short queue keeps every worker busy and a long one is handed over in runs.
    /// </summary>
    private int ShareForOneWorker() => Math.Clamp(_buffer.Count / Math.Max(1, _activeWorkers), 1, _workerBatch);

    /// <summary>Moves items of waiting batches into free space, in order.</summary>
    private void AdmitBatches()
    {
        while (_batches.TryPeek(out var batch) && HasSpace())
        {
            var before = batch.Admitted;
            while (_buffer.Count + _reserved < _capacity && batch.Admitted < batch.Items.Count)
            {
                _buffer.PushBack(batch.Items[batch.Admitted++]);
            }

            var admitted = batch.Admitted - before;
            _enqueued += admitted;
            ActorQueueTelemetry.QueueEnqueuedCounter.Add(admitted, _telemetry.Tag);
            if (batch.Admitted < batch.Items.Count)
            {
                return;
            }

            _admittedBatches.Add(_batches.Dequeue());
        }
    }

    /// <summary>
    /// Adds the put's item and answers it. The counts are published before the answer, so a caller that reads
    /// <c>Size</c> after its put returns sees its item; a put withdrawn at that instant is taken back out.
    /// </summary>
    private void Accept(PendingPut<T> put)
    {
        _buffer.PushBack(put.Item);
        _enqueued++;
        Publish();
        if (put.TryAccept())
        {
            ActorQueueTelemetry.QueueEnqueuedCounter.Add(1, _telemetry.Tag);
            return;
        }

        _buffer.PopBack();
        _enqueued--;
    }

    private void Backpressure(PendingPut<T> put)
    {
        _backpressure++;
        ActorQueueTelemetry.QueueBackpressureCounter.Add(1, _telemetry.Tag);
        _telemetry.Log.Warning("Queue {QueueName} is full ({Capacity} items): a put gave up after {Timeout}", _telemetry.QueueName, _capacity, put.Timeout);
        put.Full();
    }

    private void CountFinished(int finished, int failed)
    {
        _processed += finished;
        ActorQueueTelemetry.QueueProcessedCounter.Add(finished, _telemetry.Tag);
        if (failed > 0)
        {
            _errors += failed;
            ActorQueueTelemetry.QueueErrorsCounter.Add(failed, _telemetry.Tag);
        }
    }

    private void AfterItemFinished()
    {
        Pump();
        if (Unfinished == 0 && _joiners.Count > 0)
        {
            foreach (var joiner in _joiners)
            {
                joiner.Completion.TrySetResult(true);
            }

            _joiners.Clear();
        }

        CheckStopped();
    }

    private void CheckStopped()
    {
        if (_status == QueueStatus.Stopping && _workers.Count == 0)
        {
            _status = QueueStatus.Stopped;
            Timers.Cancel(StopTimerKey);
            _telemetry.Log.Information("Queue {QueueName} stopped with {Count} items still queued (StartAsync resumes them, DrainAsync hands them back)",
                _telemetry.QueueName, _buffer.Count);
        }

        if (_status != QueueStatus.Stopped || _workers.Count > 0)
        {
            Publish();
            return;
        }

        var unfinished = Unfinished;
        if (unfinished > 0)
        {
            foreach (var joiner in _joiners)
            {
                joiner.Completion.TrySetException(StoppedWithPending(unfinished));
            }

            _joiners.Clear();
        }

        Publish();
        foreach (var stopper in _stoppers)
        {
            stopper.Completion.TrySetResult(true);
        }

        _stoppers.Clear();
        if (_terminateWhenStopped)
        {
            Context.Stop(Self);
        }
    }

    private static QueueStateException StoppedWithPending(int pending) =>
        new($"Cannot join a stopped queue with {pending} pending items; start it again to process them, or drain them", QueueStatus.Stopped);

    private void SpawnWorkers(WorkerSpec<T> spec)
    {
        _generation++;
        var props = QueueWorkerActor<T>.Props(spec, _telemetry).WithDispatcher(_workerDispatcher);
        for (var i = 1; i <= spec.Count; i++)
        {
            var worker = Context.ActorOf(props, $"worker-{_generation}-{i}");
            Context.Watch(worker);
            _workers.Add(worker, new WorkerState());
            _activeWorkers++;
        }
    }

    private void RetireAllWorkers()
    {
        foreach (var (workerRef, worker) in _workers)
        {
            if (!worker.Retiring)
            {
                // A worker with items finishes the one in hand, hands back the rest and then stops; one without stops now.
                worker.Retiring = true;
                _activeWorkers--;
                if (worker.HasItems)
                {
                    worker.Run?.Yield();
                }
                else
                {
                    Context.Stop(workerRef);
                }
            }
        }
    }

    private void MarkIdle(IActorRef workerRef, WorkerState worker)
    {
        if (!worker.Idle)
        {
            worker.Idle = true;
            _idle.Enqueue(workerRef);
        }
    }

    private bool TryTakeIdleWorker(out IActorRef workerRef, out WorkerState worker)
    {
        if (!HasIdleWorker())
        {
            workerRef = null!;
            worker = null!;
            return false;
        }

        workerRef = _idle.Dequeue();
        worker = _workers[workerRef];
        worker.Idle = false;
        return true;
    }

    /// <summary>Whether an item fits, besides the places reserved for credited puts; takes unused credits back when that makes room.</summary>
    private bool HasSpace()
    {
        if (_buffer.Count + _reserved < _capacity)
        {
            return true;
        }

        _reserved -= _inbox.Revoke();
        return _buffer.Count + _reserved < _capacity;
    }

    /// <summary>Adds the credited puts that came in to the buffer, oldest first; <c>true</c> when there were any.</summary>
    private bool TakeInbox()
    {
        var taken = 0;
        while (_inbox.TryTake(out var item))
        {
            _buffer.PushBack(item);
            taken++;
        }

        if (taken == 0)
        {
            return false;
        }

        _reserved -= taken;
        _enqueued += taken;
        ActorQueueTelemetry.QueueEnqueuedCounter.Add(taken, _telemetry.Tag);
        Publish(); // before the items leave the inbox's count, so Size never misses them
        _inbox.Taken(taken);
        return true;
    }

    /// <summary>
    /// After a message: grants the free space as credits while nothing else waits for it, and settles whether a
    /// credited put must tell the router. It need not while no free worker or getter could take an item: whatever
    /// takes the next item (a worker's report, a get, a start) is a message, and the inbox is taken in before it.
    /// </summary>
    private void SettleInbox()
    {
        while (true)
        {
            if (_status == QueueStatus.Processing && _puts.IsEmpty && _batches.Count == 0)
            {
                var free = _capacity - _buffer.Count - _reserved;
                if (free > 0)
                {
                    _reserved += free;
                    _inbox.Grant(free);
                }
            }

            if (_gets.IsEmpty && !HasIdleWorker())
            {
                _inbox.WillLook();
                return;
            }

            if (!_inbox.StopLooking() || !TakeInbox())
            {
                return;
            }

            Pump();
        }
    }

    /// <summary>Whether a free worker waits for items (stale entries at the head of the idle queue are dropped).</summary>
    private bool HasIdleWorker()
    {
        while (_idle.TryPeek(out var workerRef))
        {
            if (_workers.TryGetValue(workerRef, out var worker) && worker.Idle && !worker.Retiring)
            {
                return true;
            }

            _idle.Dequeue();
        }

        return false;
    }

    private QueueMetrics CurrentMetrics() => new(_enqueued, _processed, _errors, _backpressure)
    {
        Drained = _drained,
        InFlight = _workerInFlight + _manualInFlight,
    };

    private void Publish()
    {
        var depth = _buffer.Count;
        if (depth != _reportedDepth)
        {
            ActorQueueTelemetry.QueueDepthCounter.Add(depth - _reportedDepth, _telemetry.Tag);
            _reportedDepth = depth;
        }

        _counters.Publish(_status, depth, _activeWorkers, CurrentMetrics());
    }

    /// <summary>What the router knows of one worker.</summary>
    private sealed class WorkerState
    {
        private T[] _items = [];

        /// <summary>Whether the worker holds items now.</summary>
        public bool HasItems => _items.Length > 0;

        /// <summary>
        /// The worker's latest run: the task holding the items (told directly to yield when the worker retires), or,
        /// once it has reported, the task waiting to be handed the next run.
        /// </summary>
        public WorkerRun<T>? Run { get; set; }

        /// <summary>Whether the worker stands in the idle queue.</summary>
        public bool Idle { get; set; }

        /// <summary>Whether the worker finishes its current item and then stops.</summary>
        public bool Retiring { get; set; }

        /// <summary>The run sequence number of the items held.</summary>
        public long Sequence { get; private set; }

        public void Give(T[] items, long sequence)
        {
            _items = items;
            Sequence = sequence;
        }

        public T[] TakeItems()
        {
            var items = _items;
            _items = [];
            return items;
        }
    }
}
