using System.Runtime.ExceptionServices;
using System.Threading.Tasks.Sources;
using ActorQueue.Runtime;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Coordination;

/// <summary>
/// A facade caller's waiter. It is its own message and its own completion (an <see cref="IValueTaskSource{TResult}"/>
/// awaited once), so a wait costs one allocation and no temporary Ask actor. Grant, failure and cancellation race
/// from different threads; the first one wins (one compare-and-swap) and the others do nothing.
/// Continuations run asynchronously, never on the thread of the actor that grants.
/// </summary>
/// <remarks>
/// The completion is written out here rather than kept in a <see cref="ManualResetValueTaskSourceCore{TResult}"/>: a
/// waiter is awaited once and never reset, so it needs no version, and the parts most waits never use (a failure, a
/// captured execution or scheduling context) share one <see cref="Uncommon"/> object made when first needed. A waiter
/// is what every waiting caller costs: this keeps 16–24 bytes off each (docs/ARCHITECTURE.md, <c>FacadeWaiter</c>). The
/// protocol is the core's: whoever completes writes the outcome, marks it written (<see cref="_completed"/> = 2), then
/// swaps the continuation slot from empty to <see cref="CompletedMark"/>; the awaiter, finding the slot empty, writes
/// its state and contexts, then swaps its continuation in (a second await is refused without touching the first's).
/// Whoever finds the other's value there schedules the continuation.
/// </remarks>
/// <typeparam name="TResult">What the awaiting caller gets for a grant.</typeparam>
internal abstract class FacadeWaiter<TResult> : PermitWaiter, IValueTaskSource<TResult>, IUndeliverableRequest
{
    /// <summary>In <see cref="_continuation"/>: the waiter completed before anyone awaited it. Never run.</summary>
    private static readonly Action<object?> CompletedMark = static _ => System.Diagnostics.Debug.Fail("The completed mark is never run.");

    /// <summary>The actor that serves this waiter, told when the caller cancels.</summary>
    private readonly IActorRef _server;

    /// <summary><c>null</c>, the awaiter's continuation, or <see cref="CompletedMark"/>.</summary>
    private Action<object?>? _continuation;

    /// <summary>The awaiter's state for <see cref="_continuation"/>, written before it.</summary>
    private object? _continuationState;

    /// <summary>The grant's result, written by whoever won <see cref="_completed"/> before it marks it written.</summary>
    private TResult? _result;

    /// <summary>The failure and the captured contexts, when there are any (see <see cref="Uncommon"/>).</summary>
    private Uncommon? _uncommon;

    /// <summary>0 while it waits; 1 once granted, failed or cancelled; 2 once that outcome is written.</summary>
    private int _completed;

    /// <param name="server">The actor that serves this waiter, told when the caller cancels.</param>
    protected FacadeWaiter(IActorRef server) => _server = server;

    /// <summary>The actor that serves this waiter.</summary>
    public IActorRef Server => _server;

    /// <summary>Completes with the grant's result, a failure or cancellation; awaited exactly once, by the facade that made it.</summary>
    public ValueTask<TResult> Completion => new(this, 0);

    /// <summary>Whether it is already answered (granted, failed or cancelled).</summary>
    public bool IsCompleted => Volatile.Read(ref _completed) != Waiting;

    /// <inheritdoc />
    public override bool IsWithdrawn => IsCompleted;

    /// <inheritdoc />
    public override bool TryGrant(in PermitGrant grant)
    {
        if (!TryComplete())
        {
            return false;
        }

        Answer(ResultOf(grant));
        return true;
    }

    /// <inheritdoc />
    public override void Fail(Exception error)
    {
        if (TryComplete())
        {
            OnAnswered();
            SetError(error);
        }
    }

    /// <summary>Completes it as cancelled, unless it is already answered.</summary>
    /// <returns><c>true</c> when this call cancelled it.</returns>
    public bool TryCancel(CancellationToken cancellationToken)
    {
        if (!TryComplete())
        {
            return false;
        }

        OnAnswered();
        SetError(new TaskCanceledException(null, null, cancellationToken));
        return true;
    }

    /// <summary>
    /// The grant, withdrawn if <paramref name="cancellationToken"/> fires first. The caller awaits this waiter itself,
    /// token or not (its continuation scheduled as <see cref="WaiterContinuations.Schedule"/> says); the token's registration is dropped
    /// once the waiter is answered (<see cref="WatchCancellation"/>).
    /// </summary>
    public ValueTask<TResult> WaitAsync(CancellationToken cancellationToken)
    {
        WatchCancellation(cancellationToken);
        return Completion;
    }

    /// <summary>As <see cref="WaitAsync"/>, as a task.</summary>
    public Task<TResult> WaitAsTaskAsync(CancellationToken cancellationToken)
    {
        WatchCancellation(cancellationToken);
        return Completion.AsTask();
    }

    /// <inheritdoc />
    public TResult GetResult(short token)
    {
        CheckToken(token);
        if (Volatile.Read(ref _completed) != Written)
        {
            throw new InvalidOperationException("The wait has not completed; a waiter's result is read once it has.");
        }

        _uncommon?.Error?.Throw();
        return _result!;
    }

    /// <inheritdoc />
    public ValueTaskSourceStatus GetStatus(short token)
    {
        CheckToken(token);
        if (Volatile.Read(ref _completed) != Written)
        {
            return ValueTaskSourceStatus.Pending;
        }

        return _uncommon?.Error is not { } error ? ValueTaskSourceStatus.Succeeded
            : error.SourceException is OperationCanceledException ? ValueTaskSourceStatus.Canceled
            : ValueTaskSourceStatus.Faulted;
    }

    /// <inheritdoc />
    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        CheckToken(token);
        var context = (flags & ValueTaskSourceOnCompletedFlags.FlowExecutionContext) != 0 ? ExecutionContext.Capture() : null;
        object? scheduling = null;
        if ((flags & ValueTaskSourceOnCompletedFlags.UseSchedulingContext) != 0)
        {
            scheduling = SynchronizationContext.Current is { } synchronization && synchronization.GetType() != typeof(SynchronizationContext)
                ? synchronization
                : TaskScheduler.Current != TaskScheduler.Default ? TaskScheduler.Current : null;
        }

        var found = Volatile.Read(ref _continuation);
        if (found is null)
        {
            // State and contexts only into an empty slot (a refused second await must not change the first's), and
            // before the continuation: whoever completes reads them once it finds the continuation.
            if (context is not null || scheduling is not null)
            {
                var uncommon = GetUncommon();
                uncommon.ExecutionContext = context;
                uncommon.SchedulingContext = scheduling;
            }

            _continuationState = state;
            found = Interlocked.CompareExchange(ref _continuation, continuation, null);
            if (found is null)
            {
                return;
            }
        }

        if (!ReferenceEquals(found, CompletedMark))
        {
            throw new InvalidOperationException("A waiter is awaited once.");
        }

        WaiterContinuations.Schedule(continuation, state, context, scheduling); // completed first: nobody else will
    }

    /// <summary>The failure for a waiter that reached an actor already stopped.</summary>
    public abstract void Undelivered();

    /// <summary>
    /// The one answer (grant, failure or cancellation) has been decided and, for a grant, its result written; called
    /// once, by whoever answered, before the awaiting caller can resume.
    /// </summary>
    protected virtual void OnAnswered()
    {
    }

    /// <summary>What the caller gets for <paramref name="grant"/>.</summary>
    protected abstract TResult ResultOf(in PermitGrant grant);

    /// <summary>
    /// From the caller's token: cancels first, then tells the server to drop the waiter. A waiter whose cancellation
    /// the server completes (a condition wait takes the lock back first) overrides this to tell without cancelling.
    /// </summary>
    protected virtual void OnCancellationRequested(CancellationToken cancellationToken)
    {
        if (TryCancel(cancellationToken))
        {
            TellServer(new WithdrawWaiter(this, cancellationToken));
        }
    }

    /// <summary>Completes it with <paramref name="result"/> (a waiter that relays another's answer), unless it is already answered.</summary>
    /// <returns><c>true</c> when this call completed it.</returns>
    protected bool TrySetResult(TResult result)
    {
        if (!TryComplete())
        {
            return false;
        }

        Answer(result);
        return true;
    }

    /// <summary>Sends <paramref name="message"/> to the actor that serves this waiter.</summary>
    protected void TellServer(object message) => _server.Tell(message, ActorRefs.NoSender);

    private const int Waiting = 0;
    private const int Answered = 1;
    private const int Written = 2;

    private static void CheckToken(short token)
    {
        if (token != 0)
        {
            throw new InvalidOperationException("A waiter's completion has one token, 0: it is awaited once and never reused.");
        }
    }

    private bool TryComplete() => Interlocked.CompareExchange(ref _completed, Answered, Waiting) == Waiting;

    /// <summary>The winner's grant: writes <paramref name="result"/>, then signals.</summary>
    private void Answer(TResult result)
    {
        _result = result;
        OnAnswered();
        Signal();
    }

    private void SetError(Exception error)
    {
        GetUncommon().Error = ExceptionDispatchInfo.Capture(error);
        Signal();
    }

    /// <summary>
    /// The winner, once the outcome is written: marks it written, then runs (schedules) a continuation already there,
    /// and drops the caller's token registration (<see cref="WatchCancellation"/>).
    /// </summary>
    private void Signal()
    {
        Interlocked.Exchange(ref _completed, Written); // a full fence: WatchCancellation's registrar and this read each other's write
        var continuation = Volatile.Read(ref _continuation) ?? Interlocked.CompareExchange(ref _continuation, CompletedMark, null);
        var uncommon = Volatile.Read(ref _uncommon);
        if (continuation is not null)
        {
            WaiterContinuations.Schedule(continuation, _continuationState, uncommon?.ExecutionContext, uncommon?.SchedulingContext);
        }

        uncommon?.DropCancellation();
    }

    /// <summary>
    /// Registers <paramref name="cancellationToken"/> (one that can fire) to withdraw this waiter, for as long as it waits.
    /// </summary>
    /// <remarks>
    /// The registration is dropped (<see cref="CancellationTokenRegistration.Unregister"/>, which never waits for a
    /// running callback) by whoever comes second of this registrar and the waiter's answer (<see cref="Signal"/>): the
    /// registrar stores it and then reads whether the waiter is answered; the answer is written (a full fence) before
    /// <see cref="Signal"/> reads the registration's state (<see cref="Uncommon.DropCancellation"/>). Each side's write
    /// comes before its read, so at least one sees the other's, and one exchange decides which drops it. A long-lived
    /// token (a host's stopping token, a request's abort) so keeps no registration per answered wait. Before, the wait
    /// was an async method around the waiter: the caller awaited .NET's task, whose continuation a refusing context
    /// lost (see <see cref="WaiterContinuations.Schedule"/>), and its registration's disposal could wait for a running callback.
    /// </remarks>
    private void WatchCancellation(CancellationToken cancellationToken)
    {
        if (!cancellationToken.CanBeCanceled)
        {
            return;
        }

        var uncommon = GetUncommon();
        uncommon.Cancellation = cancellationToken.UnsafeRegister(
            static (state, token) => ((FacadeWaiter<TResult>)state!).OnCancellationRequested(token), this);
        if (!uncommon.KeepCancellation())
        {
            uncommon.Cancellation.Unregister(); // answered first: Signal found nothing kept to drop
        }
        else if (IsCompleted)
        {
            uncommon.DropCancellation(); // answered meanwhile: whichever of Signal and this comes second drops it
        }
    }

    /// <summary>The uncommon part, made once by whoever needs it first (the awaiter and a failure may race).</summary>
    private Uncommon GetUncommon() =>
        Volatile.Read(ref _uncommon) ?? Interlocked.CompareExchange(ref _uncommon, new Uncommon(), null) ?? _uncommon!;

    /// <summary>What few waits use: a failure, the contexts an awaiter asked to continue in, a caller's token registration.</summary>
    private sealed class Uncommon
    {
        private const int NoCancellation = 0;
        private const int CancellationKept = 1;
        private const int CancellationDropped = 2;

        /// <summary>The caller's token registration, written by the registrar before it is kept (<see cref="KeepCancellation"/>).</summary>
        public CancellationTokenRegistration Cancellation;

        /// <summary><see cref="NoCancellation"/>, <see cref="CancellationKept"/> or <see cref="CancellationDropped"/> (for good).</summary>
        private int _cancellationState;

        /// <summary>The registrar, once <see cref="Cancellation"/> is written: <c>false</c> if the waiter's answer came first (and found nothing kept to drop).</summary>
        public bool KeepCancellation() =>
            Interlocked.CompareExchange(ref _cancellationState, CancellationKept, NoCancellation) == NoCancellation;

        /// <summary>Drops the registration once, whoever calls first with one kept; never waits for a running callback.</summary>
        public void DropCancellation()
        {
            if (Interlocked.Exchange(ref _cancellationState, CancellationDropped) == CancellationKept)
            {
                Cancellation.Unregister();
            }
        }

        /// <summary>The failure or cancellation, written by the winner before it marks the outcome written.</summary>
        public ExceptionDispatchInfo? Error;

        /// <summary>The awaiter's execution context, when it asked for it to flow; written before its continuation.</summary>
        public ExecutionContext? ExecutionContext;

        /// <summary>The awaiter's <see cref="SynchronizationContext"/> or <see cref="TaskScheduler"/>; written before its continuation.</summary>
        public object? SchedulingContext;
    }
}

/// <summary>A facade caller cancelled: the server drops its waiter if it still waits (or, for a deferred cancellation, completes it).</summary>
/// <param name="Waiter">The waiter.</param>
/// <param name="Token">The token that fired.</param>
internal sealed record WithdrawWaiter(PermitWaiter Waiter, CancellationToken Token) : IDeadLetterSuppression;
