using System.Runtime.ExceptionServices;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <content>Batches: <c>BatchProcessAsync</c> puts a whole sequence in chunks, runs it and reports its failures at the end.</content>
public sealed partial class WorkQueue<T>
{
    /// <summary>
    /// Processes a batch: starts the queue and its workers, puts every item (waiting for space, never dropping one),
    /// waits until all are finished, and stops. The same queue can run several batches, one after another: a batch started
    /// while another runs on it is refused. While it runs, its workers are its own (<see cref="ProcessAsync(Func{T, Task}, int?, Func{Exception, T, Task}?)"/>
    /// and <c>Queue.StartWorkersAsync</c> are refused); it replaces workers started before it, and on a queue already
    /// processing other items it waits for those too: start it on an idle or stopped queue.
    /// </summary>
    /// <param name="items">The items, enumerated once, lazily as space frees up.</param>
    /// <param name="worker">Processes one item.</param>
    /// <param name="numWorkers">How many workers; default the concurrency limit, else 1.</param>
    /// <param name="errorHandler">Receives an exception the worker threw, with its item (on a durable queue that retries, each failed try);
    /// without one, the items that finally failed are thrown at the end.</param>
    /// <returns>A task that completes when every item is finished and the queue has stopped.</returns>
    /// <exception cref="AggregateException">Without <paramref name="errorHandler"/>: items finally failed. It is thrown after the whole batch
    /// ran and the queue stopped, and holds one exception per such item, in the order they were reported: on a durable
    /// queue that retries, the last try's of each dead letter (a failed try that is retried, logged as a warning, is no
    /// failure of the batch, and an item that succeeds on a retry makes none); for an item a durable queue cannot read
    /// back as <typeparamref name="T"/>, a <see cref="QueueStorageException"/> naming it.</exception>
    /// <exception cref="InvalidOperationException">A batch is already running on this queue; this one read nothing and changed
    /// nothing; or another batch took the queue's workers while this one waited for a worker start being sent as it came
    /// (such a start is no refusal: the batch waits until it is sent, then replaces those workers).</exception>
    /// <remarks>If <paramref name="items"/> throws (its <c>GetEnumerator</c>, <c>MoveNext</c> or <c>Dispose</c>), the items it gave before are processed as any other, the queue stops,
    /// and the sequence's exception is thrown (without <paramref name="errorHandler"/> and with failed items, in one
    /// <see cref="AggregateException"/>, first). So is the queue's when it is stopped or disposed under the batch, or refuses
    /// a chunk while it goes on processing (a durable queue whose journal rejects the write, or an item it cannot
    /// serialise): the failures collected until then are never dropped, each item of the refused chunk (read from the
    /// sequence, in no queue) counts as failed with the refusal as its reason, no further item is read, and the exception is
    /// thrown only once the queue has stopped — a queue still processing first processes the items queued before the
    /// refusal, as when the sequence fails. The sequence's enumerator is disposed however the batch ends, and an exception
    /// from its <c>Dispose</c> never replaces another: with the batch ending early (the queue's exception, a cancellation)
    /// or the sequence's <c>MoveNext</c> failing too, they are thrown together, the one that ended the batch first, then
    /// the sequence's (<c>MoveNext</c>, then <c>Dispose</c>), then the items' failures, in one <see cref="AggregateException"/>;
    /// a cancellation's <see cref="OperationCanceledException"/> keeps its type and holds the rest in its inner
    /// <see cref="AggregateException"/>. A disposal that comes once every item of the batch is queued and has finished
    /// (before the batch's join or after it, as it stops the queue) ends nothing: the batch completes (or throws its
    /// failures) once the disposal has stopped the queue. It tells so from the queue's counts once stopped (nothing
    /// queued or in flight, nothing drained or discarded since it started the queue), so items of other producers discarded by the
    /// disposal make it throw the disposal.</remarks>
#pragma warning disable RS0026, RS0027 // the overloads differ in the worker's arity, which a lambda always picks
    public Task BatchProcessAsync(IEnumerable<T> items, Func<T, Task> worker, int? numWorkers = null, Func<Exception, T, Task>? errorHandler = null)
    {
        ArgumentNullException.ThrowIfNull(worker);
        return BatchProcessAsync(items, (item, _) => worker(item), numWorkers, errorHandler, CancellationToken.None);
    }

    /// <summary>Processes a batch as the other overload, with a worker that takes a token and a token for the whole batch.</summary>
    /// <param name="items">The items, enumerated once, lazily as space frees up.</param>
    /// <param name="worker">Processes one item; its token is cancelled when <paramref name="cancellationToken"/> is (and by a stop's timeout).</param>
    /// <param name="numWorkers">How many workers; default the concurrency limit, else 1.</param>
    /// <param name="errorHandler">Receives an exception the worker threw, with its item (each failed try); without one, the items that finally failed are thrown at the end.</param>
    /// <param name="cancellationToken">Cancels the batch (also while it waits for a worker start being sent: then it reads and queues nothing): no further item is read, the queue stops at once (work in flight
    /// is cancelled and goes back to the head; a queue disposed first has its disposal's grace period ended), and the call throws <see cref="OperationCanceledException"/>. The items not
    /// processed stay queued (<see cref="DrainAsync()"/> hands them back), except a chunk that was waiting for space when
    /// the stop came, or read and not yet put as the cancellation came: the stop refuses it, each of its items goes to <paramref name="errorHandler"/> as failed (an
    /// <see cref="OperationCanceledException"/>), and the exception's message says how many items that was (without a
    /// handler, they are the items the sequence gave after the ones handed back).</param>
    /// <returns>A task that completes when every item is finished and the queue has stopped.</returns>
    /// <exception cref="AggregateException">Without <paramref name="errorHandler"/>: items finally failed, one exception each (thrown after the batch, as in the other overload).</exception>
    /// <exception cref="InvalidOperationException">A batch is already running on this queue (see the other overload).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled. Without
    /// <paramref name="errorHandler"/> and with items failed before the cancellation, its message counts them and its
    /// <see cref="Exception.InnerException"/> is an <see cref="AggregateException"/> holding first what the cancellation
    /// interrupted, when that says more than the cancellation itself (a put or the join the stop refused, a
    /// <see cref="QueueStateException"/>; a durable journal's failure; a disposal) — which, with no item failed, is the
    /// inner exception itself —, then the sequence's exceptions if it failed too, then the exception of each item that
    /// finally failed (a durable queue's retried tries are not among them), in the order they were reported.</exception>
    /// <remarks>If <paramref name="items"/> throws (its <c>GetEnumerator</c>, <c>MoveNext</c> or <c>Dispose</c>), the items it gave before are processed as any other, the queue stops,
    /// and the sequence's exception is thrown (without <paramref name="errorHandler"/> and with failed items, in one
    /// <see cref="AggregateException"/>, first). So is the queue's when it is stopped or disposed under the batch, or refuses
    /// a chunk while it goes on processing (a durable queue whose journal rejects the write, or an item it cannot
    /// serialise): the failures collected until then are never dropped, each item of the refused chunk (read from the
    /// sequence, in no queue) counts as failed with the refusal as its reason, no further item is read, and the exception is
    /// thrown only once the queue has stopped — a queue still processing first processes the items queued before the
    /// refusal, as when the sequence fails. An exception from the sequence's <c>Dispose</c> never replaces another, and a
    /// disposal that comes once every item is queued and has finished ends nothing (as in the other overload).</remarks>
    public async Task BatchProcessAsync(IEnumerable<T> items, Func<T, CancellationToken, Task> worker, int? numWorkers = null,
                                        Func<Exception, T, Task>? errorHandler = null, CancellationToken cancellationToken = default)
#pragma warning restore RS0026, RS0027
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(worker);
        cancellationToken.ThrowIfCancellationRequested();
        if (!await BeginBatchAsync(cancellationToken).ConfigureAwait(false))
        {
            // Refused before anything is read or sent: a second batch restarted the queue's workers with its own worker and
            // error handler, which then took the first batch's items, and each batch's join and stop ran into the other (review h177).
            // Worker starts being sent as the batch came are waited for instead (sent before the batch's own, they are
            // replaced by it): before, the batch was refused as if they conflicted (round 39).
            throw new InvalidOperationException(
                $"A batch is already running on queue {Queue.Name}: BatchProcessAsync runs one batch at a time on a queue; start the next once it has completed");
        }

        // The sequence's own exceptions (its GetEnumerator or MoveNext, then its Dispose), whatever else ends the batch:
        // a Dispose that failed as the batch ended with another exception replaced that exception (round 39).
        var sequenceFaults = new List<ExceptionDispatchInfo>();
        ExceptionDispatchInfo? batchFault = null;
        IReadOnlyList<Exception> failed;
        try
        {
            // Failures are never silent: without a handler they are collected and thrown once the batch is done, with the
            // exception that ended it early if one did; a failure after that (an item a cancelled batch left queued,
            // discarded when the queue is disposed) is logged as an error.
            var failures = errorHandler is null ? new BatchFailures(Queue.Telemetry) : null;
            var handler = errorHandler ?? failures!.Collect;
            try
            {
                await RunBatchAsync(items, worker, numWorkers, errorHandler, handler, sequenceFaults, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception exception)
            {
                batchFault = ExceptionDispatchInfo.Capture(exception);
            }

            // Taken with the end, in one step: a failure reported from now on is logged, none falls between the two.
            failed = failures?.End() ?? [];
        }
        finally
        {
            // Whatever happens once the workers are taken, they are given back: a flag left set refused every later batch
            // and every ProcessAsync on the queue for ever (review h180).
            Queue.WorkerGate.EndBatch();
        }

        ThrowBatchOutcome(sequenceFaults, batchFault, failed, cancellationToken);
    }

    /// <summary>
    /// Takes the queue's workers for the batch (see <see cref="WorkerGate.TryBeginBatchAsync"/>): a cancellation while it
    /// waits for a worker start being sent ends the batch at once, with nothing taken and nothing read. Before, the wait
    /// ignored the token, and a cancelled batch waited as long as the start took to be sent (round 39, second reading).
    /// </summary>
    private async Task<bool> BeginBatchAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await Queue.WorkerGate.TryBeginBatchAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException error) when (cancellationToken.IsCancellationRequested)
        {
            throw new OperationCanceledException(
                $"The batch on queue {Queue.Name} was cancelled while it waited for a worker start being sent: it read no item and queued none", error, cancellationToken);
        }
    }

    /// <summary>Runs the batch: throws its exception if it ended early; <paramref name="sequenceFaults"/> gets the sequence's, if it failed.</summary>
    private async Task RunBatchAsync(IEnumerable<T> items, Func<T, CancellationToken, Task> worker, int? numWorkers, Func<Exception, T, Task>? errorHandler,
                                     Func<Exception, T, Task> handler, List<ExceptionDispatchInfo> sequenceFaults, CancellationToken cancellationToken)
    {
        try
        {
            // Without a handler of its own, the batch's collector hears only an item's last try: a try a durable queue
            // retries is no failure of the batch. Before, every failed try was thrown, so an item that succeeded on its
            // retry made the batch throw, and a dead letter was thrown once per try (round 45).
            await StartWorkersAsync(worker, numWorkers, handler, forBatch: true, lastTryOnly: errorHandler is null).ConfigureAwait(false);
            Queue.BatchWorkersStarted?.Invoke();
            await StartAsync().ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            // Disposed before the batch read anything (no item of it accepted): still thrown only once the disposal has
            // stopped the queue, whose workers may be the batch's own by now. Before, it was thrown at once (round 39, second reading).
            await Queue.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        // Taken once the queue has started, so recovered: a durable queue's counts are its journal's only then. Taken
        // before, they were a recovering queue's zeros, and an earlier run's drained items (the journal's history) read
        // as a drain under the batch, which then threw a disposal that came once every item had finished (round 43).
        var before = Queue.Metrics;
        var notQueued = new List<T>();
        var allQueued = false;
        try
        {
            // The cancellation stops the queue at once: a worker that only the token would end could otherwise keep a
            // put waiting for space for ever.
            await using (cancellationToken.UnsafeRegister(static queue => ((WorkQueue<T>)queue!).StopNow(), this).ConfigureAwait(false))
            {
                await PutAllAsync(items, notQueued, sequenceFaults, cancellationToken).ConfigureAwait(false);
                allQueued = true;
                await JoinAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception exception) when (cancellationToken.IsCancellationRequested
                                          && exception is OperationCanceledException or QueueStateException or QueueStorageException or ObjectDisposedException)
        {
            await StopOnCancelAsync().ConfigureAwait(false);
            var message = $"The batch on queue {Queue.Name} was cancelled: the items not processed stay queued (DrainAsync hands them back)"
                          + (notQueued.Count > 0
                              ? $"; the last {notQueued.Count} items read from the sequence were refused by the stop (or read as the cancellation came) and are not queued"
                              : "");
            if (errorHandler is not null)
            {
                // Read from the caller's sequence and in no queue: the handler is the only place they can be given back.
                // The refusal, when the queue gave one (a durable write refused or cut short says whether the item may be stored), is its inner exception.
                var reason = new OperationCanceledException($"The batch on queue {Queue.Name} was cancelled before this item was queued", exception, cancellationToken);
                await Queue.Telemetry.ReportEachAsync(errorHandler, reason, notQueued).ConfigureAwait(false);
            }

            throw new OperationCanceledException(message, exception, cancellationToken);
        }
        catch (Exception exception) when (notQueued.Count > 0 || exception is ObjectDisposedException || StoppedByDisposal(exception))
        {
            // The queue was stopped or disposed under the batch, or refused the chunk (a durable queue's journal, an item it
            // cannot store): the refusal is the reason each of them was not queued.
            // Without a handler the batch's collector takes them, so they are thrown with the other failures.
            // Disposed once its last chunk was in, the facade refused its join at once while the workers still ran: it too
            // is thrown only once the disposal has stopped the queue (review h176).
            await Queue.Telemetry.ReportEachAsync(handler, exception, notQueued).ConfigureAwait(false);
            await FinishRefusedAsync(cancellationToken).ConfigureAwait(false);
            if (exception is ObjectDisposedException && allQueued && EveryItemFinished(before))
            {
                // Disposed once every item was in and had finished, before the join was sent (or answered): nothing
                // ended early. Before, the refused join was thrown although every item was processed (round 39).
                return;
            }

            if (allQueued && StoppedByDisposal(exception))
            {
                // The join was failed by the disposal's stop (an item left unfinished, then discarded): the disposal is what
                // ended the batch. Before, the stop's refusal went out at once, before the discarded items were reported to
                // the batch (a collector then logged them instead of throwing them) (round 39).
                throw new ObjectDisposedException($"Queue {Queue.Name} was disposed under the batch ({exception.Message})", exception);
            }

            throw;
        }

        // Disposed once every item had finished (after the join; a stop that reaches a router already gone succeeds, so only
        // the facade refuses it): nothing failed, and the batch only waits for the disposal to stop the queue. Before, the
        // refused stop was thrown, as if the batch had ended early (review h177).
        await StopOrAwaitDisposalAsync(timeout: null).ConfigureAwait(false);
    }

    /// <summary>Whether <paramref name="exception"/> is a stop's refusal (a join failed with items pending) from a queue disposed meanwhile.</summary>
    private bool StoppedByDisposal(Exception exception) => exception is QueueStateException && Queue.RouterOwner.IsDisposed;

    /// <summary>
    /// Whether, once the queue has stopped, every item it accepted has finished (processed, successfully or not), and
    /// none was drained or discarded since <paramref name="before"/>: then a batch whose every item was queued knows
    /// that each of them finished and was counted. Items of other producers that were discarded make it <c>false</c>
    /// (the batch cannot tell they were not its own).
    /// </summary>
    private bool EveryItemFinished(QueueMetrics before)
    {
        var after = Queue.Metrics;
        return after.Discarded == before.Discarded && after.Drained == before.Drained
               && after.Enqueued == after.Processed + after.Drained + after.Discarded;
    }

    /// <summary>A cancelled batch's stop, with no grace period; a queue disposed meanwhile (a host cancels and disposes at once) is stopped by its disposal.</summary>
    private Task StopOnCancelAsync() => StopUnlessGoneAsync(TimeSpan.Zero);

    /// <summary>
    /// The end of a batch whose chunk was refused, so that it still completes once the queue has stopped: a queue that goes
    /// on processing (a durable queue's journal rejected the write, or an item cannot be serialised) processes the items
    /// queued before the refusal, as when the sequence fails, then stops; one stopped or disposed under the batch is waited
    /// for until it has stopped; a cancellation meanwhile (until then) stops it at once. Before, the batch threw at once and left the queue processing.
    /// </summary>
    private async Task FinishRefusedAsync(CancellationToken cancellationToken)
    {
        await using (cancellationToken.UnsafeRegister(static queue => ((WorkQueue<T>)queue!).StopNow(), this).ConfigureAwait(false))
        {
            try
            {
                await JoinAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception error) when (error is QueueStateException or ObjectDisposedException or QueueStorageException)
            {
                // Stopped (or cancelled) with items left, disposed, or failed under the batch: what is left stays queued for
                // DrainAsync, or its disposal reports it; the refusal is still what the batch throws.
            }

            await StopUnlessGoneAsync(cancellationToken.IsCancellationRequested ? TimeSpan.Zero : null).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Stops the queue for a batch that ends early, and waits until it has stopped: a queue disposed meanwhile is stopped
    /// by its disposal, which is waited for (its grace period ended first for a stop with none), and one whose durable
    /// storage failed has no router left to stop. Before, a disposed queue was not waited for: a batch whose chunk its
    /// disposal refused threw while its workers still ran, for up to the disposal's grace period (review h171).
    /// </summary>
    private async Task StopUnlessGoneAsync(TimeSpan? timeout)
    {
        try
        {
            await StopOrAwaitDisposalAsync(timeout).ConfigureAwait(false);
        }
        catch (QueueStorageException)
        {
            // Its failure stopped it; the items it refused are still to be reported by the caller.
        }
    }

    /// <summary>
    /// Stops the queue and waits until it has stopped; one disposed meanwhile (the facade refuses the stop) is stopped by
    /// its disposal, which is waited for instead (its grace period ended first for a stop with none).
    /// </summary>
    private async Task StopOrAwaitDisposalAsync(TimeSpan? timeout)
    {
        try
        {
            await StopAsync(timeout).ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
            if (timeout == TimeSpan.Zero)
            {
                EndDisposalGrace();
            }

            // The first disposal's stop (a later DisposeAsync completes with it): within twice the stop timeout.
            await Queue.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// A cancelled batch whose queue was disposed first: the facade refuses a stop (disposed), so the stop at once goes to
    /// the router directly: a stop with no grace period, which the router merges with the disposal's (the earliest
    /// deadline of the stops wins), so the work in hand is cancelled now, as the cancellation says, whichever of the two
    /// comes first. The disposal marks the queue disposed before it sends its stop: a <see cref="StopTimedOut"/> sent
    /// in between reached a processing router, which ignores it, and the disposal ran its whole grace period (review h171).
    /// </summary>
    private void EndDisposalGrace() => Queue.Router.Tell(new StopQueue(TimeSpan.Zero, terminate: false), ActorRefs.NoSender);

    /// <summary>Stops the queue with no grace period, from a cancellation callback (which must not throw).</summary>
    private void StopNow()
    {
        try
        {
            _ = StopAsync(TimeSpan.Zero);
        }
        catch (ObjectDisposedException)
        {
            // Disposed meanwhile: its disposal stops it, with a grace period that the cancellation ends.
            EndDisposalGrace();
        }
    }
}
