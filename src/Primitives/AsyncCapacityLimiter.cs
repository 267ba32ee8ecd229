using System.Diagnostics;
using ActorQueue.Primitives.Coordination;
using Akka.Actor;

namespace ActorQueue.Primitives;

/// <summary>
/// An async capacity limiter (anyio's <c>CapacityLimiter</c>) whose tokens live in a coordinator actor. Each borrower
/// holds at most one token: by default the calling flow, or any object through <see cref="AcquireOnBehalfOfAsync"/>.
/// </summary>
/// <remarks>Actor callers send <see cref="CoordinatorProtocol"/> messages to <see cref="Coordinator"/>; the borrower is the actor, and its token comes back when it stops.</remarks>
[DebuggerDisplay("AsyncCapacityLimiter: {BorrowedTokens}/{TotalTokens} borrowed")]
public sealed class AsyncCapacityLimiter : IDisposable, IAsyncDisposable
{
    private readonly CoordinatorHandle _handle;
    private readonly CapacityState _state = new();
    private readonly FlowIdentity _identity;

    /// <summary>Creates a limiter with <paramref name="totalTokens"/> tokens.</summary>
    /// <param name="totalTokens">How many tokens: a whole number from 1 to <see cref="int.MaxValue"/>, or <see cref="double.PositiveInfinity"/>.</param>
    /// <param name="system">The actor system; the embedded default when <c>null</c>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="totalTokens"/> is below 1, above <see cref="int.MaxValue"/> but finite, not whole, or NaN.</exception>
    public AsyncCapacityLimiter(double totalTokens, ActorSystem? system = null)
    {
        _state.SetTotal(ValidateTokens(totalTokens, nameof(totalTokens), nameof(totalTokens)), _state.NextSet());
        // A flow keeps its token while it waits as well as while it holds (FlowIdentity counts its waiters), so its
        // second acquire meets the coordinator's "already holds or waits" check instead of borrowing as someone new;
        // once its acquires are answered (cancelled or failed), its next acquire takes a fresh token.
        _identity = new FlowIdentity(token => _state.Holders.ContainsKey(token));
        _handle = new CoordinatorHandle(system, CapacityLimiterCoordinator.Props(totalTokens, _state), "capacity-limiter", _identity);
    }

    /// <summary>How many tokens there are. Raising it wakes waiters in FIFO order; lowering it takes no token back.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The value is below 1, above <see cref="int.MaxValue"/> but finite, not whole, or NaN.</exception>
    public double TotalTokens
    {
        get => _state.Total;
        set
        {
            ValidateTokens(value, nameof(value), nameof(TotalTokens));
            _handle.ThrowIfDisposed(this);
            // Numbered, so that the mirror and the coordinator both end at the latest set however racing setters'
            // writes and messages interleave, and a reader never sees an older total put back.
            var set = _state.NextSet();
            _state.SetTotal(value, set);
            Coordinator.Tell(new SetTotalTokens(value, set), ActorRefs.NoSender);
        }
    }

    /// <summary>How many tokens are held now.</summary>
    public int BorrowedTokens => _state.Borrowed;

    /// <summary><see cref="TotalTokens"/> minus <see cref="BorrowedTokens"/> (negative for a while after the total was lowered).</summary>
    public double AvailableTokens => _state.Total - _state.Borrowed;

    /// <summary>Callers waiting now, as of the last message the coordinator handled.</summary>
    internal int WaitingCount => _state.Waiting;

    /// <summary>Who the calling flow is for this primitive.</summary>
    internal FlowIdentity Identity => _identity;

    /// <summary>The coordinator actor, for actor callers.</summary>
    public IActorRef Coordinator => _handle.Coordinator;

    /// <summary>Takes a token for the calling flow, waiting in FIFO order when none is free.</summary>
    /// <param name="cancellationToken">Withdraws the wait; a cancelled waiter takes nothing.</param>
    /// <returns>A task that completes once the token is held.</returns>
    /// <exception cref="InvalidOperationException">The calling flow already holds or waits for a token.</exception>
    public Task AcquireAsync(CancellationToken cancellationToken = default) =>
        AcquireOnBehalfOfAsync(_identity.ForAcquire(), cancellationToken);

    /// <summary>Gives back the calling flow's token.</summary>
    /// <exception cref="InvalidOperationException">The calling flow holds no token.</exception>
    public void Release() =>
        ReleaseOnBehalfOf(_identity.Current ?? throw new InvalidOperationException("The calling flow holds no token of this capacity limiter."));

    /// <summary>Takes a token for <paramref name="borrower"/>, waiting in FIFO order when none is free.</summary>
    /// <param name="borrower">Who holds the token: an object compared by reference (two distinct objects that compare equal are two borrowers), or a value (an id, a <see cref="Guid"/>, a record struct) compared by its value.</param>
    /// <param name="cancellationToken">Withdraws the wait; a cancelled waiter takes nothing.</param>
    /// <returns>A task that completes once the token is held.</returns>
    /// <exception cref="InvalidOperationException"><paramref name="borrower"/> already holds or waits for a token.</exception>
    public Task AcquireOnBehalfOfAsync(object borrower, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(borrower);
        _handle.ThrowIfDisposed(this);
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled(cancellationToken);
        }

        var waiter = new BorrowerWaiter(Coordinator, borrower, _state);
        return _handle.Send(waiter, cancellationToken);
    }

    /// <summary>Gives back <paramref name="borrower"/>'s token.</summary>
    /// <param name="borrower">The borrower that holds the token.</param>
    /// <exception cref="InvalidOperationException"><paramref name="borrower"/> holds no token.</exception>
    public void ReleaseOnBehalfOf(object borrower)
    {
        ArgumentNullException.ThrowIfNull(borrower);
        if (!_state.Holders.TryRemove(borrower, out _))
        {
            throw new InvalidOperationException("This borrower holds no token of this capacity limiter.");
        }

        _identity.Forget(borrower);

        Coordinator.Tell(new CapacityRelease(borrower), ActorRefs.NoSender);
    }

    /// <summary>Takes a token for the calling flow for an <c>await using</c> scope.</summary>
    /// <param name="cancellationToken">Withdraws the wait.</param>
    /// <returns>A scope whose disposal gives the token back once.</returns>
    public ValueTask<IAsyncDisposable> LockAsync(CancellationToken cancellationToken = default)
    {
        var borrower = _identity.ForAcquire();
        var acquire = AcquireOnBehalfOfAsync(borrower, cancellationToken);
        return ScopeAsync(acquire, borrower);

        async ValueTask<IAsyncDisposable> ScopeAsync(Task acquired, object holder)
        {
            await acquired.ConfigureAwait(false);
            return new Releaser(() => ReleaseOnBehalfOf(holder));
        }
    }

    /// <summary>Stops the coordinator; waiters get <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose() => _handle.Dispose();

    /// <summary>Stops the coordinator and waits until it has stopped.</summary>
    /// <returns>A task that completes when the coordinator has stopped.</returns>
    public ValueTask DisposeAsync() => _handle.DisposeAsync();

    // Borrowers are counted in an int, so a finite total beyond int.MaxValue could never be reached: only infinity means no limit.
    // The message names what the caller wrote (the constructor's totalTokens, the property TotalTokens, whose setter's
    // parameter is value), not anyio's total_tokens.
    private static double ValidateTokens(double value, string parameterName, string name) =>
        double.IsPositiveInfinity(value) || (value >= 1 && value <= int.MaxValue && value == Math.Floor(value))
            ? value
            : throw new ArgumentOutOfRangeException(parameterName, value,
                $"{name} must be a whole number from 1 to {int.MaxValue}, or infinity, got {value}");
}
