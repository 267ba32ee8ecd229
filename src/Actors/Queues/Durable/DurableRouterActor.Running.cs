using System.Diagnostics;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>The durable router's hand-out: ready items to getters and workers, each item's run, and what its end journals.</summary>
internal sealed partial class DurableRouterActor<T>
{
    /// <summary>
    /// Hands ready items to waiting getters and free workers, then admits waiting puts and batches into the space that
    /// frees (admitted before the hand-out, a put waiting on a full queue stayed waiting after a getter or a worker took
    /// an item, until some other message came: a put with a timeout met backpressure on a queue with space), and publishes.
    /// </summary>
    private void Pump()
    {
        if (_status == QueueStatus.Processing)
        {
            var now = _clock.GetUtcNow().UtcTicks;
            while (!_getters.IsEmpty && TakeForGetter(now, out var id, out var attempts, out var item, out var unreadable))
            {
                if (unreadable is null)
                {
                    HandToGetter(id, item);
                }
                else
                {
                    FailUnreadable(id, attempts + 1, unreadable);
                }
            }

            while (_spec is { } spec && _busy < spec.Count && _book.TryTake(now, out var id, out var attempts, out var item, out var unreadable, Decode))
            {
                if (unreadable is null)
                {
                    Run(spec, id, attempts + 1, item);
                }
                else
                {
                    FailUnreadable(id, attempts + 1, unreadable);
                }
            }
        }

        while (!_waitingPuts.IsEmpty && HasSpace() && _waitingPuts.Dequeue() is { } put)
        {
            Timers.Cancel(put);
            Store(put);
        }

        AdmitBatches();
        ScheduleDue();
        Publish();
    }

    /// <summary>
    /// Takes the next item for a getter: the first ready one while an item that cannot be read back can be dealt with
    /// now (no error handler to hear of it: dead-lettered at once; a worker free: reported in that worker's place), else
    /// the first ready one that can be read back, those ahead of it waiting for a worker (<see cref="DurableBook{T}.TryTakeReadable"/>).
    /// Before, a getter's unreadable item was reported with every worker busy, one handler call more than the worker count
    /// at once, and the workers short of one while it ran (round 46).
    /// </summary>
    private bool TakeForGetter(long now, out long id, out int attempts, out T item, out Exception? unreadable)
    {
        if (_spec is not { ErrorHandler: not null } spec || _busy < spec.Count)
        {
            return _book.TryTake(now, out id, out attempts, out item, out unreadable, Decode);
        }

        unreadable = null;
        return _book.TryTakeReadable(now, out id, out attempts, out item, Decode);
    }

    /// <summary>
    /// An item taken for a getter or a worker whose bytes cannot be read back as <typeparamref name="T"/>: no try can run
    /// it, so it fails for good. With workers whose error handler is set (a user's, or a batch's collector), it first goes
    /// to that handler as a try that failed (<see cref="UnreadableFailure"/>, with the default item), in a worker's place
    /// (a getter takes one only with a worker free: <see cref="TakeForGetter"/>): the item stays in flight until the
    /// handler has heard (so a batch's join waits for it, and the batch throws it), then becomes a dead letter — as any
    /// try's end is journaled after its report, so should the queue end before that write (the process dies), the item
    /// waits again when the queue is opened again and is reported again: at least once. Without one, it becomes a dead
    /// letter at once (<see cref="DeadLetterUnreadable"/>). Before, the handler never heard of it, and a batch completed as
    /// if it had been processed (round 45).
    /// </summary>
    private void FailUnreadable(long id, int attempt, Exception error)
    {
        if (_spec?.ErrorHandler is not { } handler)
        {
            _ = DeadLetterUnreadable(id, error);
            return;
        }

        var reason = LogUnreadable(id, error, "it becomes a dead letter once the error handler has heard of it");
        _busy++;
        _runningIds.Add(id);
        var failure = UnreadableFailure(id, error, deadAlready: false);
        var (telemetry, limiter) = (_telemetry, _spec.Limiter);
        var token = _runCancellation.Token; // as a try's report: a stop's timeout ends the wait for a handler that never returns
        Task.Run(async () => await ReportUnreadableAsync(telemetry, limiter, handler, failure, token).ConfigureAwait(false)
                ? new DurableItemDone(id, attempt, failure, Cancelled: false) { Unreadable = reason }
                : new DurableItemDone(id, attempt, null, Cancelled: true),
            CancellationToken.None).PipeTo(Self);
    }

    /// <summary>
    /// Hands the error handler an item it cannot read back (<paramref name="failure"/>, with the default item) holding a
    /// lease of the workers' <paramref name="limiter"/>, as a try's report runs inside its try's lease: a limiter shared
    /// with other work caps these reports too (before, they ran outside it: round 46). Returns <c>false</c> when
    /// <paramref name="token"/> (a stop's timeout) ended the wait for the lease before the handler heard: as a cancelled
    /// try's, the item then waits again. A limiter that fails otherwise does not keep the handler from hearing: it hears
    /// without the lease. Never throws.
    /// </summary>
    private static async Task<bool> ReportUnreadableAsync(QueueTelemetry telemetry, IConcurrencyLimiter? limiter, Func<Exception, T, Task> handler,
                                                          QueueStorageException failure, CancellationToken token)
    {
        ConcurrencyLease? lease = null;
        try
        {
            if (limiter is not null)
            {
                try
                {
                    lease = await limiter.AcquireAsync(telemetry.QueueName, token).ConfigureAwait(false);
                }
                catch (Exception) when (token.IsCancellationRequested)
                {
                    return false;
                }
                catch (Exception limiterError)
                {
                    telemetry.Log.Write(Microsoft.Extensions.Logging.LogLevel.Warning, limiterError,
                        "Durable queue {QueueName}: its workers' limiter failed as the error handler was to hear of an item it cannot read back; the handler hears without a lease",
                        telemetry.QueueName);
                }
            }

            await telemetry.ReportFailureAsync(handler, failure, default(T)!, token).ConfigureAwait(false);
            return true;
        }
        finally
        {
            lease?.Dispose();
            telemetry.UnreadableReportEnded?.Invoke();
        }
    }

    /// <summary>
    /// An item whose bytes cannot be read back as <typeparamref name="T"/> becomes a dead letter at once, with the reason,
    /// counted as an error (before, the decode threw on the router's thread: the router restarted idle and the queue ran
    /// nothing more — review 68). Its bytes stay in the journal; a dead-letter listing shows it with the default item, and
    /// a requeue after the type is fixed runs it. A drain's item (handed back by no one) goes to the error handler of the
    /// last workers, if any: see <see cref="ReportDrained"/>. Returns what that handler is to hear.
    /// </summary>
    private QueueStorageException DeadLetterUnreadable(long id, Exception error)
    {
        _traces.Remove(id);
        var reason = LogUnreadable(id, error, "dead-lettered");
        // Left ready (or running) until its write ended, a second drain or a hand-out in between dead-lettered it again
        // (counted twice; re-read of this fix).
        ApplyThenWrite(new ItemDeadLettered(id, reason));
        Publish(); // before a drain answers: its caller then reads the dead letter counted
        return UnreadableFailure(id, error, deadAlready: true);
    }

    /// <summary>
    /// A drain's items it cannot read back (dead letters already) go to the error handler of the last workers, if any: one
    /// after another on one task, each holding a lease of the workers' limiter (<see cref="ReportUnreadableAsync"/>), off
    /// the router's thread and not awaited, so a handler that never returns holds no drain (it holds the rest of that
    /// drain's reports: they are logged and dead letters already). Before, each item started its own task: a drain of many
    /// such items ran as many handler calls at once, beside the workers and outside their limiter (round 46).
    /// </summary>
    private void ReportDrained(List<QueueStorageException> failures)
    {
        if (failures.Count == 0 || _spec is not { ErrorHandler: { } handler } spec)
        {
            return;
        }

        var (telemetry, limiter) = (_telemetry, spec.Limiter);
        _ = Task.Run(async () =>
        {
            foreach (var failure in failures)
            {
                await ReportUnreadableAsync(telemetry, limiter, handler, failure, CancellationToken.None).ConfigureAwait(false);
            }
        });
    }

    /// <summary>Logs an item that cannot be read back as an error, with what becomes of it (<paramref name="outcome"/>); returns the reason its dead letter keeps.</summary>
    private string LogUnreadable(long id, Exception error, string outcome)
    {
        var reason = $"The item {CannotBeReadBack(error)}";
        _telemetry.Log.Write(Microsoft.Extensions.Logging.LogLevel.Error, error, "Item {Id} of durable queue {QueueName} cannot be read back; {Outcome}: {Reason}",
            id, _telemetry.QueueName, outcome, reason);
        return reason;
    }

    /// <summary>
    /// What the error handler (or a batch) hears of an item that cannot be read back: the queue, the item's id and why,
    /// with the decoder's exception inside, and what becomes of it: a dead letter already (<paramref name="deadAlready"/>:
    /// a drain's), or once the handler has heard (a getter's or a worker's; before, that text too said it was one, which
    /// the handler could not find: round 46).
    /// </summary>
    private QueueStorageException UnreadableFailure(long id, Exception error, bool deadAlready) =>
        new QueueStorageException($"Item {id} of durable queue {_telemetry.QueueName} {CannotBeReadBack(error)}; "
            + (deadAlready
                ? "it is a dead letter (DeadLettersAsync lists it with the default item; requeue it once the type reads it)"
                : "it becomes a dead letter once the error handler has heard of it, or a stop's timeout ends the wait (DeadLettersAsync then lists it with the "
                  + "default item; requeue it once the type reads it); should the queue end before that is written (the process dies, say), the item waits again "
                  + "when the queue is opened again, and is reported again"), error) { LoggedByQueue = true }; // by LogUnreadable

    /// <summary>Why an item cannot be read back: the item type and the decoder's exception.</summary>
    private static string CannotBeReadBack(Exception error) => $"cannot be read back as {typeof(T).FullName}: {error.GetType().FullName}: {UserText.MessageOf(error)}";

    private void HandToGetter(long id, T item)
    {
        Publish(); // before the getter hears: its caller then finds its item counted out of the queue and in flight
        var trace = _traces.GetValueOrDefault(id);
        while (_getters.Dequeue() is { } get)
        {
            get.ItemTrace = trace; // its caller records a receive span linked to the producer's, as from the in-memory queue
            if (get.Completion.TrySetResult(item))
            {
                _traces.Remove(id); // a getter's caller runs the item outside the queue: no process span of ours
                _taken.Enqueue(id);
                return;
            }
        }

        _book.Return(id);
    }

    /// <summary>Starts try number <paramref name="attempt"/> of an item; not journaled (a crash during it spends no try, and the item runs again).</summary>
    private void Run(WorkerSpec<T> spec, long id, int attempt, T item)
    {
        _busy++;
        _runningIds.Add(id);
        var token = _runCancellation.Token;
        var telemetry = _telemetry;
        var trace = _traces.GetValueOrDefault(id);
        var lastTry = attempt >= _durability.Retry.MaxAttempts; // as HandleDone tells a dead letter from a retry
        Task.Run(() => ProcessAsync(spec, telemetry, id, attempt, lastTry, item, trace, token), CancellationToken.None).PipeTo(Self);
    }

    /// <summary>
    /// Runs one try (<paramref name="lastTry"/>: a failure makes the item a dead letter) off the actor's thread, under a consumer span that is a child of the producer's context when the put
    /// carried one (<see cref="Activity.Current"/> while the work runs, as in the in-memory queue); never throws: every
    /// ending becomes a <see cref="DurableItemDone"/>.
    /// </summary>
    private static async Task<DurableItemDone> ProcessAsync(WorkerSpec<T> spec, QueueTelemetry telemetry, long id, int attempt, bool lastTry, T item, ActivityContext trace,
                                                            CancellationToken token)
    {
        using var span = ItemTraces.StartProcessing(telemetry.ProcessSpanName, telemetry.MetricName, trace);
        var done = await TryAsync(spec, telemetry, id, attempt, lastTry, item, token).ConfigureAwait(false);
        if (done.Error is not null)
        {
            span?.SetStatus(ActivityStatusCode.Error, done.Error.GetType().FullName);
        }

        return done;
    }

    private static async Task<DurableItemDone> TryAsync(WorkerSpec<T> spec, QueueTelemetry telemetry, long id, int attempt, bool lastTry, T item,
                                                        CancellationToken token)
    {
        ConcurrencyLease? lease = null;
        try
        {
            if (spec.Limiter is { } limiter)
            {
                lease = await limiter.AcquireAsync(telemetry.QueueName, token).ConfigureAwait(false);
            }

            await spec.Work(item, token).ConfigureAwait(false);
            return new DurableItemDone(id, attempt, null, Cancelled: false);
        }
        catch (Exception) when (token.IsCancellationRequested)
        {
            return new DurableItemDone(id, attempt, null, Cancelled: true);
        }
        catch (Exception error)
        {
            if (lastTry || !spec.LastTryOnly)
            {
                await telemetry.ReportFailureAsync(spec.ErrorHandler, error, item, token).ConfigureAwait(false);
            }
            else
            {
                telemetry.TryRetried(error, item, attempt);
            }

            return new DurableItemDone(id, attempt, error, Cancelled: false);
        }
        finally
        {
            lease?.Dispose();
        }
    }

    /// <summary>A try ended: completed, retried after its backoff, dead-lettered after the last try, or (cancelled) waiting again.</summary>
    private void HandleDone(DurableItemDone done)
    {
        if (!_runningIds.Remove(done.Id))
        {
            // Not a try this router runs (a restart's take-over found its end journaled already): applying it would end
            // the item twice, or end another try of it (review 96).
            _telemetry.Log.Write(Microsoft.Extensions.Logging.LogLevel.Warning, done.Error, "Durable queue {QueueName} ignored the end of a try of item {Id} it does not run",
                _telemetry.QueueName, done.Id);
            return;
        }

        _busy--;
        AssertBusy();
        if (done.Cancelled)
        {
            _book.Return(done.Id);
            AfterChange();
            return;
        }

        if (done.Error is null)
        {
            _traces.Remove(done.Id);
            WriteLater(new ItemCompleted(done.Id));
        }
        else if (done.Unreadable is { } unreadable)
        {
            _traces.Remove(done.Id); // no try can run it: a dead letter, whatever try this was
            WriteLater(new ItemDeadLettered(done.Id, unreadable));
        }
        else
        {
            var reason = $"{done.Error.GetType().FullName}: {UserText.MessageOf(done.Error)}";
            var retry = _durability.Retry;
            if (done.Attempt >= retry.MaxAttempts)
            {
                _traces.Remove(done.Id);
            }

            WriteLater(done.Attempt >= retry.MaxAttempts
                ? (IDurableQueueMessage)new ItemDeadLettered(done.Id, reason)
                : new ItemRetrying(done.Id, RetryDueTicks(retry.DelayBefore(done.Attempt, _jitter.NextDouble())), reason));
        }

        AfterChange();
    }

    /// <summary>
    /// When a retry after <paramref name="delay"/> is due (UTC ticks): at the latest time the clock can tell when the delay
    /// reaches past it (a MaxDelay of TimeSpan.MaxValue, say). Before, the sum threw on the router's thread, which restarted
    /// the router idle and without its workers.
    /// </summary>
    private long RetryDueTicks(TimeSpan delay)
    {
        var now = _clock.GetUtcNow();
        return delay < DateTimeOffset.MaxValue - now ? (now + delay).UtcTicks : DateTimeOffset.MaxValue.UtcTicks;
    }

    private void HandleTaskDone()
    {
        if (!_taken.TryDequeue(out var id))
        {
            _telemetry.TaskDoneWithoutGet();
            return;
        }

        WriteLater(new ItemCompleted(id));
    }

    private void HandleGet(GetRequest<T> get)
    {
        _getters.Enqueue(get);
        Pump();
    }
}
