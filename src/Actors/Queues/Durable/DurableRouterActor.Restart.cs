using System.Diagnostics;
using System.Runtime.ExceptionServices;
using Akka.Actor;
using Akka.Persistence;
using Microsoft.Extensions.Logging;

namespace ActorQueue.Actors;

/// <summary>
/// The durable router across a restart (an exception on its thread): the failed instance hands its running tries,
/// waiting callers and status to the next (<see cref="DurableHandOver{T}"/>), which recovers the book from the journal
/// and then takes them over, so the queue goes on processing with its workers and no try runs twice at once.
/// </summary>
internal sealed partial class DurableRouterActor<T>
{
    /// <summary>Where this instance leaves what the next one takes over.</summary>
    private readonly DurableHandOver<T> _handOver;

    /// <summary>What the previous instance left; taken over once the book is recovered, then <c>null</c>.</summary>
    private DurableHandOver<T>.Handed? _handed;

    /// <summary>
    /// The items whose tries this instance (or the one before it) started and that have not ended. An ending for any
    /// other item is not ours to apply: it would end an item some other try runs, or one already ended.
    /// </summary>
    private readonly HashSet<long> _runningIds = [];

    /// <summary>This instance was handed something and has not finished taking it over: failing now, it failed resuming.</summary>
    private bool _resuming;

    /// <summary>What this instance failed with while its write was under way: it restarts with it once the write ends.</summary>
    private ExceptionDispatchInfo? _failedWhileWriting;

    /// <summary>A disposal's stop that came after this instance failed while writing (stashed for the next instance).</summary>
    private StopQueue? _failedDisposal;

    /// <summary>
    /// A failure while a write is under way restarts the router only once the write has ended. Restarted at once, the next
    /// instance read the journal while the write was still on its way, recovered without its events (a put told it "may
    /// have been stored" was stored, and never ran), and its own first write took the same sequence number (an SQL
    /// journal refuses it, which stops the router) and item ids. Until the write ends, this instance stashes every message
    /// (the restart hands them to the next one) and changes nothing more — unless a disposal's bound passes first: then it
    /// detaches (<see cref="FailedWhileWriting"/>) instead of restarting. While the router recovers, its messages are kept
    /// in its own stash (<c>WhileRecovering</c>) and handed back in order once it has recovered.
    /// </summary>
    protected override bool AroundReceive(Receive receive, object message)
    {
        if (IsRecovering && WhileRecovering(message))
        {
            return true;
        }

        try
        {
            return base.AroundReceive(receive, message);
        }
        catch (Exception error) when (_writeInFlight && _failedWhileWriting is null && message is not (WriteMessageSuccess or WriteMessageRejected))
        {
            _failedWhileWriting = ExceptionDispatchInfo.Capture(error);
            _telemetry.Log.Write(LogLevel.Error, error, "Durable queue {QueueName} failed while a journal write was under way: it restarts once the write ends",
                _telemetry.QueueName);
            Become(FailedWhileWriting);
            return true;
        }
    }

    /// <summary>
    /// Until the write ends, every message waits for the next instance, a disposal too; but a journal that never answers
    /// would hold that disposal for ever. So a disposal's stop also starts its bound here
    /// (<see cref="LifecycleWaiters.DisposalCame"/>), and when it passes with the write still under way
    /// (<see cref="DisposalOverdue"/>), or a disposal's abandon timer fires (armed before the failure, or by the grace
    /// period's end after it), the router answers everyone and lingers for the write as any disposal that stops waiting
    /// for its journal (<see cref="Detach"/>): then the write's end stops it rather than restart it.
    /// </summary>
    private void FailedWhileWriting()
    {
        Command<StopQueue>(stop =>
        {
            Stash.Stash();
            if (stop.Terminate && _failedDisposal is null)
            {
                _failedDisposal = stop;
                _waiters.DisposalCame(stop.Timeout);
            }
        });
        Command<StopTimedOut>(_ =>
        {
            Stash.Stash(); // the next instance ends the grace period
            // A disposal that came before the failure: stashed, this timer armed no abandon, and the disposal waited for
            // the write for ever (review h147). It waits for it at most its timeout more, as for cancelled work.
            _grace.AbandonAfter(Timers);
        });
        Command<DisposalOverdue>(_ => DetachFailed(stashUnlessDisposing: false));
        Command<AbandonWorkers>(_ => DetachFailed(stashUnlessDisposing: true));
        CommandAny(_ => Stash.Stash());
    }

    /// <summary>
    /// A disposal's wait for the write of an instance that failed while writing is over: the router answers everyone
    /// and detaches; with no disposal (an abandon timer of a user's stop), the message waits for the next instance.
    /// </summary>
    private void DetachFailed(bool stashUnlessDisposing)
    {
        if (_failedDisposal is { } disposal)
        {
            _waiters.AddStopper(disposal); // stashed, it would otherwise be answered by no one
        }

        if (_waiters.TerminateWhenStopped)
        {
            _abandoned = true;
            Detach();
        }
        else if (stashUnlessDisposing)
        {
            Stash.Stash();
        }
    }

    /// <summary>The write under way ended: an instance that failed meanwhile restarts now (its callers are answered), else the next write starts.</summary>
    private void AfterWrite(int answeredPuts = 0)
    {
        if (_failedWhileWriting is { } failure)
        {
            _inFlight = [];
            _writeInFlight = false;
            failure.Throw();
        }

        Next(answeredPuts);
    }

    /// <inheritdoc />
    protected override void PreRestart(Exception reason, object message)
    {
        // The router restarts and recovers under the same persistence id: its name stays taken. PostStop, which the
        // restart runs, freed it, so a second router of that name could journal beside it.
        _restarting = true;
        base.PreRestart(reason, message);
    }

    /// <summary>
    /// The failed instance's last act (its PostStop): the running tries, the getters and the lifecycle waiters go to the
    /// next instance. Puts cannot follow (their timers and write callbacks end with this instance): each learns whether
    /// its item may have been stored.
    /// </summary>
    private void HandOver()
    {
        var name = _telemetry.QueueName;
        FailUnwritten(new QueueStorageException($"Durable queue '{name}' restarted after an internal error before this change was written: nothing of it happened (a put's item is not in the queue, a drain handed nothing back, a dead letter stayed one); try again"),
            new QueueStorageException($"Durable queue '{name}' restarted after an internal error while the item's write was under way: it may have been stored, and then runs"));
        _writing.Clear();
        var refusal = new QueueStorageException($"Durable queue '{name}' restarted after an internal error while the put waited for space; put it again");
        while (_waitingPuts.Dequeue() is { } put)
        {
            put.Failed(refusal);
        }

        while (_waitingBatches.TryDequeue(out var waiting))
        {
            var batch = waiting.Batch; // its unwritten items were refused above: it is answered at once
            RefuseBatch(batch, () => new QueueStorageException($"{refusal.Message} ({batch.Admitted} of the batch's {batch.Items.Count} items were accepted)"));
        }

        _handOver.Leave(new DurableHandOver<T>.Handed(_status, _spec, [.. _runningIds], [.. _taken], _traces, _runCancellation, _waiters, _getters,
            ResumeFailed: _resuming, _backpressure, _grace.EndsAt));
    }

    /// <summary>
    /// Once the book is recovered: the previous instance's running tries and getters' items are held as running again
    /// (their ends come here), and the queue goes back to what it was doing. A stop under way goes on with what was left
    /// of its timeout. When the previous instance failed
    /// while it resumed, the fault is likely to come back (Akka restarts without limit, and each restart recovers the
    /// journal again): the queue stops instead, its running tries cancelled, and a start resumes it.
    /// </summary>
    private void TakeOver()
    {
        if (_handed is not { } handed)
        {
            return;
        }

        _handed = null;
        _resuming = true;
        _spec = handed.Spec;
        _backpressure = handed.Backpressure;
        foreach (var id in handed.Running)
        {
            if (_book.Hold(id))
            {
                _runningIds.Add(id);
                _busy++;
            }
        }

        foreach (var id in handed.Taken)
        {
            if (_book.Hold(id))
            {
                _taken.Enqueue(id);
            }
        }

        AssertBusy();
        var status = handed.ResumeFailed && handed.Status != QueueStatus.Idle ? QueueStatus.Stopped : handed.Status;
        if (status != handed.Status)
        {
            _telemetry.Log.Write(LogLevel.Error, null, "Durable queue {QueueName} failed again while it resumed after a restart: it is stopped, with {Running} tries cancelled; start it to resume",
                _telemetry.QueueName, _busy);
            _runCancellation.Cancel();
        }
        else
        {
            _telemetry.Log.Write(LogLevel.Warning, null, "Durable queue {QueueName} restarted after an internal error and resumed {Status} with {Running} tries running",
                _telemetry.QueueName, status, _busy);
        }

        switch (status)
        {
            case QueueStatus.Processing:
                Enter(QueueStatus.Processing, Processing);
                AfterChange();
                break;
            case QueueStatus.Stopping:
                Enter(QueueStatus.Stopping, Stopping);
                ResumeStopTimeout(handed.StopDeadline);
                CheckStopped();
                break;
            case QueueStatus.Stopped:
                Enter(QueueStatus.Stopped, Stopped);
                while (_getters.Dequeue() is { } get)
                {
                    get.Completion.TrySetException(new QueueStateException(QueueErrors.CannotGet(QueueStatus.Stopped), QueueStatus.Stopped));
                }

                if (_busy > 0)
                {
                    _grace.AbandonAfter(Timers); // their tokens are cancelled: a disposal waiting waits for them at most its timeout
                }

                CheckStopped();
                break;
        }

        _resuming = false;
    }

    /// <summary>
    /// A stop under way goes on with what was left of its timeout (the timer died with the failed instance): the running
    /// tries are cancelled when it runs out, or at once if it has (a disposal among the stops then waits for them at most
    /// its timeout, from now); a stop without a timeout still waits for them.
    /// </summary>
    private void ResumeStopTimeout(TimeSpan? deadline)
    {
        if (_grace.Resume(deadline, Timers))
        {
            EndGrace();
        }
    }

    /// <summary>Every busy worker is a try this router knows it runs.</summary>
    [Conditional("DEBUG")]
    private void AssertBusy() =>
        Debug.Assert(_busy == _runningIds.Count, $"{_busy} busy workers but {_runningIds.Count} tries running");
}
