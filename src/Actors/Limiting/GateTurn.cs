using System.Diagnostics;
using Akka.Actor;

namespace ActorQueue.Actors;

/// <summary>What a gatekeeper without rates does in its turn (<see cref="GateTurn"/>): the actor instance in charge now.</summary>
internal interface IGateTurnOwner
{
    /// <summary>Start of a turn: the loan is reclaimed, so the pool is exact.</summary>
    void Taken();

    /// <summary>End of a turn: the counts are published, the free permits lent, the wake armed.</summary>
    void Resting();

    /// <summary>A facade caller's request, offered to the gate.</summary>
    void Offer(AcquireRequest request);

    /// <summary>A facade lease's permits come back.</summary>
    void Release(int permits);

    /// <summary>A facade's resize.</summary>
    void Resize(FacadeResize resize);

    /// <summary>The limiter stops: every waiter fails, the loan closes, whoever waits for the stop hears of it.</summary>
    void Close();

    /// <summary>An actor's message its stopped actor never handled: answered as a stopped gatekeeper would, or sent to dead letters.</summary>
    void AnswerStopped(object message, IActorRef sender);

    /// <summary><paramref name="op"/> (<c>null</c>: the take or the rest) threw <paramref name="error"/>: its caller fails with it, it is logged.</summary>
    void Faulted(ITurnOp? op, Exception error);
}

/// <summary>
/// The turn over a gatekeeper's state (<see cref="TurnInbox"/>), shared by its facade and its actor: a facade caller
/// whose claim failed runs its request, a lease that cannot go back into the loan its release, and a resize itself, in
/// the turn on its own thread (or leaves it to the thread in the turn), so a contended limiter costs no message. The
/// actor runs each of its messages in the turn as well (its actor callers' books, death watch, resizes, timers, the
/// stop): it takes the turn, or, finding it taken, leaves the message in it; whoever reaches that message hands the turn to the actor
/// (<see cref="ResumeTurn"/>, sent with the message's sender), since only the actor's thread may watch and stop. So
/// one thread at a time touches the gate, in one order for facade callers and actors alike. The actor's side, written
/// down (here and in docs/ARCHITECTURE.md):
/// <list type="bullet">
/// <item>Not open until the actor's first start (<see cref="Start"/>): until then a facade request goes by message, as a
/// request to a stopped or never-started actor does (dead letters answer it).</item>
/// <item>Who holds it for the actor (<see cref="_actor"/>): <c>Away</c> while the actor holds nothing; <c>Owns</c> while
/// the actor runs a message in it, while a hand-over is on its way to it (a compare-and-swap from <c>Away</c> by the
/// handing owner), and across a restart (a handler threw inside the turn: the next instance resumes it); <c>Stopped</c>
/// for good (a compare-and-swap from <c>Away</c> by the stopping actor, so a hand-over and a stop never both win).</item>
/// <item>The stop (<see cref="Stop"/>): an actor that holds the turn closes in it at once; otherwise it leaves a close in
/// the turn, run by whoever holds it. After the close every request fails as undelivered, every release is dropped
/// (the loan is closed: nothing is lent again), every actor message left in the turn is answered as a stopped
/// gatekeeper would answer it (an acquire, or the acquire of a release-and-acquire, rejected as disposed; a status given; a
/// settle failed; a facade's request sent by message, or a dispose's stop, answered as undelivered; the rest to dead
/// letters) — a message
/// that reached the mailbox before a <c>PoisonPill</c> is answered, never dropped — and the turn is sealed.</item>
/// <item>A restart carries the callers the old gate had queued over to the next instance (<see cref="LimiterCounts.CarriedOver"/>),
/// which offers them as it starts, ahead of what was left in the turn, each with what was left of its wait timeout: one
/// bad message does not fail unrelated callers, nor give them their whole wait again.</item>
/// </list>
/// </summary>
internal sealed class GateTurn(PermitLoan loan) : TurnInbox(open: false)
{
    private const int Away = 0;
    private const int Owns = 1;
    private const int Stopped = 2;

    /// <summary>The actor instance in charge; set by its start, before the turn is opened or resumed.</summary>
    private IGateTurnOwner? _owner;

    /// <summary>The actor, to hand the turn to.</summary>
    private IActorRef _gatekeeper = ActorRefs.Nobody;

    /// <summary><see cref="Away"/>, <see cref="Owns"/> or <see cref="Stopped"/>: whether the actor holds the turn.</summary>
    private int _actor;

    /// <summary>The ops after the one handed to the actor, first first; the actor (or its next instance) runs them.</summary>
    private ITurnOp? _handedRest;

    /// <summary>The message handed to the actor and not yet resumed: answered by a stop that finds it never handled.</summary>
    private ActorMessageOp? _handed;

    /// <summary>Set in the turn by the close: nothing is served again.</summary>
    private bool _closed;

    /// <summary>Facade: a lease's permits come back in the turn; <c>false</c> when it is not open or sealed (the caller sends them).</summary>
    public bool TryRelease(ConcurrencyLease lease)
    {
        // A free turn runs the release at once; a busy one is left the lease itself, its own release op.
        return TryReleaseNow(lease.Permits) || Submit(lease);
    }

    /// <summary>
    /// The actor instance starts: on its first start the turn opens (and lends); after a restart the instance takes over
    /// the turn its predecessor kept and runs what was left in it.
    /// </summary>
    public void Start(IGateTurnOwner owner, IActorRef gatekeeper)
    {
        _owner = owner;
        _gatekeeper = gatekeeper;
        if (Volatile.Read(ref _actor) != Owns)
        {
            Open();
            if (TryTake())
            {
                GiveBack(); // its rest lends the free permits
            }

            return;
        }

        ResumeForActor();
    }

    /// <summary>The actor, for a message: takes the turn if it is free.</summary>
    public bool TryTakeForActor()
    {
        if (!TryTake())
        {
            return false;
        }

        Volatile.Write(ref _actor, Owns);
        return true;
    }

    /// <summary>The actor, for a message it could not take the turn for: left in the turn, handed back with it later.</summary>
    public void LeaveForActor(object message, IActorRef sender)
    {
        var left = Submit(new ActorMessageOp(message, sender));
        Debug.Assert(left, "The turn is open while its actor runs.");
    }

    /// <summary>The actor, at the end of a message: gives the turn back (running what was left in it).</summary>
    public void GiveBackForActor()
    {
        Volatile.Write(ref _actor, Away);
        GiveBack();
    }

    /// <summary>The actor, after the message a hand-over brought: runs the ops handed with it and gives the turn back.</summary>
    public void ResumeForActor()
    {
        _handed = null;
        var rest = _handedRest;
        _handedRest = null;
        Volatile.Write(ref _actor, Away);
        Resume(rest);
    }

    /// <summary>
    /// The actor stops (not for a restart): closes in the turn — at once if the actor holds it, else by whoever holds it —
    /// and <paramref name="closed"/> runs once the close did. A turn never opened closes without one.
    /// </summary>
    public void Stop(Action closed)
    {
        if (Interlocked.CompareExchange(ref _actor, Stopped, Away) == Owns)
        {
            // A handler threw and the supervisor stops the actor, or a hand-over never reached it: the turn is the actor's.
            Volatile.Write(ref _actor, Stopped);
            Run(new CloseOp(closed));
            if (_handed is { } handed)
            {
                _handed = null;
                Run(handed);
            }

            var rest = _handedRest;
            _handedRest = null;
            Resume(rest);
            return;
        }

        if (!Submit(new CloseOp(closed)))
        {
            _owner?.Close();
            closed();
        }
    }

    /// <inheritdoc />
    protected override void Taken()
    {
        if (!_closed)
        {
            _owner!.Taken();
        }
    }

    /// <inheritdoc />
    protected override void Resting()
    {
        if (!_closed)
        {
            _owner!.Resting();
        }
    }

    /// <inheritdoc />
    protected override void Pushing() => loan.Suspend();

    /// <inheritdoc />
    /// <remarks>
    /// A pusher late to this step (its op may have run, and the LendAgain turn lent, since its push) may suspend a loan
    /// nobody will reclaim: it then asks the actor for a turn (<see cref="LendAgain"/>), whose take reclaims.
    /// </remarks>
    protected override void Pushed()
    {
        if (loan.SuspendIfOpen())
        {
            _gatekeeper.Tell(LendAgain.Instance, ActorRefs.NoSender);
        }
    }

    /// <inheritdoc />
    protected override void Faulted(ITurnOp? op, Exception error) => _owner!.Faulted(op, error);

    /// <inheritdoc />
    protected override bool TryHandOver(ITurnOp op, ITurnOp? rest)
    {
        if (op is not ActorMessageOp message)
        {
            return false;
        }

        // Before the swap: a stop that finds the actor owning the turn answers the message and runs the rest.
        _handed = message;
        _handedRest = rest;
        if (Interlocked.CompareExchange(ref _actor, Owns, Away) != Away)
        {
            _handed = null;
            _handedRest = null; // the actor stopped: Run answers the message
            return false;
        }

        _gatekeeper.Tell(new ResumeTurn(message.Message), message.Sender);
        return true;
    }

    /// <inheritdoc />
    protected override void Run(ITurnOp op)
    {
        switch (op)
        {
            case AcquireRequest request when _closed:
                request.Undelivered();
                break;
            case AcquireRequest request:
                _owner!.Offer(request);
                break;
            case ConcurrencyLease released:
                RunReleaseNow(released.Permits);
                break;
            case FacadeResize resize when !_closed:
                _owner!.Resize(resize);
                break;
            case CloseOp close:
                if (!_closed)
                {
                    _closed = true;
                    try
                    {
                        _owner!.Close();
                    }
                    catch (Exception error)
                    {
                        // Logged; the turn is sealed and the stop completes all the same. Not thrown on: a stop that runs
                        // this itself (the actor held the turn) must still hand on and give back the rest of the turn.
                        _owner!.Faulted(close, error);
                    }

                    SealOnGiveBack();
                }

                close.Closed();
                break;
            case ActorMessageOp message:
                _owner!.AnswerStopped(message.Message, message.Sender); // its actor stopped before it could be handed the message
                break;
        }
    }

    /// <inheritdoc />
    /// <remarks>Also a pushed released lease's run.</remarks>
    protected override void RunReleaseNow(int permits)
    {
        if (!_closed)
        {
            _owner!.Release(permits);
        }
    }
}

/// <summary>An actor's message left in the gatekeeper's turn while someone else held it.</summary>
internal sealed class ActorMessageOp(object message, IActorRef sender) : ITurnOp
{
    /// <summary>The message.</summary>
    public object Message { get; } = message;

    /// <summary>Its sender.</summary>
    public IActorRef Sender { get; } = sender;

    /// <inheritdoc />
    public ITurnOp? NextOp { get; set; }
}

/// <summary>
/// A gatekeeper's rest could not lend because a pusher's suspend was still on the loan, with nobody waiting: the actor
/// takes its turn once more (its take reclaims, its rest lends). A suspend is answered only by a take: a pusher whose op
/// was run before the rest may have returned, and lending at the rest could open the loan past an op pushed since.
/// Without this a release pushed while the turn was busy, and run before its rest, left a free, idle limiter refusing
/// every synchronous claim until some later call.
/// </summary>
internal sealed class LendAgain : Akka.Event.IDeadLetterSuppression
{
    public static readonly LendAgain Instance = new();
}

/// <summary>The gatekeeper's turn was handed to its actor with <see cref="Message"/>, sent with that message's sender.</summary>
internal sealed record ResumeTurn(object Message) : Runtime.IUndeliverableRequest
{
    /// <inheritdoc />
    /// <remarks>The actor stopped first (its stop closed in the turn): a facade's request inside is answered as undelivered.</remarks>
    public void Undelivered() => (Message as Runtime.IUndeliverableRequest)?.Undelivered();
}
