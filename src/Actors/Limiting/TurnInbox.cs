using System.Diagnostics;

namespace ActorQueue.Actors;

/// <summary>Something done in a <see cref="TurnInbox"/>'s turn: a request, a release, a withdrawal, a settle, a wake, a close, an actor's message.</summary>
internal interface ITurnOp
{
    /// <summary>The op pushed before it; written by its pusher before the push, read by the turn's owner after it.</summary>
    ITurnOp? NextOp { get; set; }
}

/// <summary>
/// Turns over one limit's state (a partition's, or a gatekeeper's), without a lock or a message: whoever finds the state
/// idle takes its turn and runs its op at once; whoever finds it taken pushes the op, and the owner runs every pushed op
/// before it gives the turn back. So one thread at a time touches the state, nobody ever waits for another (an op is
/// either run or left to the running owner), and a contended limit costs its callers a compare-and-swap each instead of
/// a message to an actor. The shared-memory protocol (written down here and in docs/ARCHITECTURE.md):
/// <list type="bullet">
/// <item>One word, <see cref="_head"/>: <c>null</c> idle; <see cref="Owned"/> taken with nothing pushed; an op taken
/// with ops pushed (a stack, newest first, ending in <see cref="Owned"/>); <see cref="SealedMark"/> for good.</item>
/// <item>Take (<see cref="Submit"/>, <see cref="TryTake"/>): a compare-and-swap from idle to <see cref="Owned"/>; the
/// winner is the only owner until it gives the turn back.</item>
/// <item>Push (<see cref="Submit"/> on a taken turn): calls <see cref="Pushing"/> (the loan cannot open past it), links
/// the op to the word it read and swaps it in; the owner cannot give the turn back past it, because giving back is a
/// compare-and-swap from <see cref="Owned"/> to idle. After the swap it calls <see cref="Pushed"/> (an open loan is
/// shut): the word it swapped from may be a later owner's (the turn was given back and taken again in between, and that
/// owner lent), and the caller's call must not return while a loan is open past its op.</item>
/// <item>Run (the owner): exchanges the stack for <see cref="Owned"/>, calls <see cref="TookPushed"/> (the announces of
/// the ops it took are answered), reverses it (first pushed, first run) and runs it; before giving back it calls
/// <see cref="Resting"/> (the partition lends its free permits), and if the give-back fails (someone pushed meanwhile)
/// it calls <see cref="Taken"/> again (the loan is reclaimed) and runs what came.</item>
/// <item>Faults: whatever an op, the take or the rest throws is handed to <see cref="Faulted"/> (the op's caller fails
/// with it, it is logged) and the turn goes on: an exception never leaves a turn taken, and never reaches a thread whose
/// op it was not.</item>
/// <item>Hand-over (<see cref="TryHandOver"/>): an op that must run on another thread (an actor's message) ends the
/// owner's run without giving the turn back: the turn, and the ops after that one, go to whoever the op names, who
/// runs them and gives the turn back (<see cref="Resume"/>).</item>
/// <item>Not open yet (<c>open: false</c>): refused like a sealed turn until its owner opens it (<see cref="Open"/>).</item>
/// <item>Fairness: an owner runs at most <see cref="Throughput"/> ops of others; then it queues the rest of its turn on
/// the thread pool (still owned) and returns, so no caller serves others for ever.</item>
/// <item>Seal (the owner, <see cref="SealOnGiveBack"/>): its give-back swaps <see cref="Owned"/> for
/// <see cref="SealedMark"/> instead of idle, after running everything pushed before; from then on every
/// <see cref="Submit"/> and <see cref="TryTake"/> fails at once, so a caller never leaves an op where nobody will run
/// it in time, and handles it itself (a dropped partition's request goes to the actor before its call returns).</item>
/// </list>
/// A caller's code never runs inside a turn (every waiter completes asynchronously), so a turn never nests in itself;
/// a turn may run inside another partition's (the actor's sweep reroutes a dropped partition's requests to new ones).
/// </summary>
internal abstract class TurnInbox : IThreadPoolWorkItem
{
    /// <summary>How many ops an owner runs for others before it hands the rest of its turn to the thread pool.</summary>
    internal const int Throughput = 64;

    /// <summary>The word's value while the turn is taken and nothing is pushed.</summary>
    private static readonly ITurnOp Owned = new OwnedMark();

    /// <summary>The word's value once sealed: nothing is taken or pushed again.</summary>
    private static readonly ITurnOp SealedMark = new OwnedMark();

    /// <summary>Set by the owner: its give-back seals the turn instead of freeing it.</summary>
    private bool _sealOnGiveBack;

    /// <summary><c>null</c> idle, <see cref="Owned"/> taken, or the newest pushed op (the stack ends in <see cref="Owned"/>).</summary>
    private ITurnOp? _head;

    /// <summary>Whether the owner calls <see cref="TookPushed"/>: a field, so a turn without it pays no call per exchange.</summary>
    private readonly bool _answersPushes;

    /// <summary>A turn, idle, or refused like a sealed one until <see cref="Open"/> (<paramref name="open"/> <c>false</c>).</summary>
    /// <param name="open">Whether it may be taken from the start.</param>
    /// <param name="answersPushes">Whether the owner calls <see cref="TookPushed"/> as it takes what was pushed.</param>
    protected TurnInbox(bool open = true, bool answersPushes = false)
    {
        _answersPushes = answersPushes;
        if (!open)
        {
            _head = SealedMark;
        }
    }

    /// <summary>Whether some thread holds the turn now (for asserts and tests).</summary>
    internal bool IsTaken => Volatile.Read(ref _head) is { } head && !ReferenceEquals(head, SealedMark);

    /// <summary>Whether ops wait for the turn's owner (for tests).</summary>
    internal bool HasPushed => Volatile.Read(ref _head) is { } head && !ReferenceEquals(head, Owned) && !ReferenceEquals(head, SealedMark);

    /// <summary>Whether the turn was sealed: nothing runs in it again.</summary>
    internal bool IsSealed => ReferenceEquals(Volatile.Read(ref _head), SealedMark);

    /// <summary>Runs <paramref name="op"/> now, on this thread, if the turn is free; else leaves it to the owner, who runs it before giving the turn back.</summary>
    /// <returns><c>false</c> when the turn is sealed: nothing was run or left, the caller handles the op.</returns>
    public bool Submit(ITurnOp op)
    {
        var seen = Volatile.Read(ref _head);
        while (true)
        {
            if (ReferenceEquals(seen, SealedMark))
            {
                // A push that lost its swap to the seal linked the op to what it found: the caller keeps the op (a
                // released lease is the user's), which must not keep that op alive (a request, the stop's callback).
                op.NextOp = null;
                return false;
            }

            if (seen is null)
            {
                seen = Interlocked.CompareExchange(ref _head, Owned, null);
                if (seen is null)
                {
                    TakenSafely();
                    op.NextOp = null;
                    Continue(op, ran: 0);
                    return true;
                }

                continue;
            }

            // Announced before the push: an owner about to give the turn back may be lending this instant.
            Pushing();
            op.NextOp = seen;
            var was = Interlocked.CompareExchange(ref _head, op, seen);
            if (ReferenceEquals(was, seen))
            {
                PushedSafely(); // the word swapped from may be a later owner's, which lent meanwhile
                return true;
            }

            seen = was;
        }
    }

    /// <summary>Takes the turn if it is free (the actor's sweep: a partition someone is using is not idle).</summary>
    /// <returns>Whether this thread owns the turn now; then it must call <see cref="GiveBack()"/>.</returns>
    public bool TryTake()
    {
        if (Interlocked.CompareExchange(ref _head, Owned, null) is not null)
        {
            return false;
        }

        TakenSafely();
        return true;
    }

    /// <summary>Owner: runs what was pushed and gives the turn back.</summary>
    public void GiveBack() => Continue(null, ran: 0);

    /// <summary>
    /// Releases <paramref name="permits"/> at once if the turn is free (<see cref="RunReleaseNow"/>), as a release op
    /// would run but without making one (a lease's release, the fast path); its fault is contained like an op's.
    /// <c>false</c> when the turn is taken, sealed or not open.
    /// </summary>
    protected bool TryReleaseNow(int permits)
    {
        if (!TryTake())
        {
            return false;
        }

        try
        {
            RunReleaseNow(permits);
        }
        catch (Exception error)
        {
            Faulted(null, error);
        }

        GiveBack();
        return true;
    }

    /// <summary>Whoever a turn was handed to (<see cref="TryHandOver"/>): runs <paramref name="rest"/>, the ops after the handed one, then what was pushed, and gives the turn back.</summary>
    protected void Resume(ITurnOp? rest)
    {
        AssertTaken();
        Continue(rest, ran: 0);
    }

    /// <summary>Opens a turn made not open: from now on it is taken and pushed to.</summary>
    protected void Open()
    {
        var was = Interlocked.CompareExchange(ref _head, null, SealedMark);
        Debug.Assert(ReferenceEquals(was, SealedMark), "A turn is opened once, before anyone could take it.");
    }

    /// <summary>Owner: its give-back seals the turn (after running what was pushed before), for good.</summary>
    protected void SealOnGiveBack()
    {
        AssertTaken();
        _sealOnGiveBack = true;
    }

    /// <inheritdoc />
    void IThreadPoolWorkItem.Execute() => Continue(null, ran: 0);

    /// <summary>Owner, after taking the turn: the state is the owner's from here (the partition reclaims its loan).</summary>
    protected abstract void Taken();

    /// <summary>Owner: runs one op.</summary>
    protected abstract void Run(ITurnOp op);

    /// <summary>Owner, in <see cref="TryReleaseNow"/> (and for a pushed release op, as the subclass runs it): gives <paramref name="permits"/> back.</summary>
    protected abstract void RunReleaseNow(int permits);

    /// <summary>Owner, about to give the turn back with nothing pushed: the partition lends its free permits.</summary>
    protected abstract void Resting();

    /// <summary>
    /// Pusher, before it pushes its op: the partition shuts an open loan and keeps a shut one from opening, so nobody claims
    /// past the op; should the push then find the turn idle instead, its own take reclaims the loan.
    /// </summary>
    protected abstract void Pushing();

    /// <summary>Pusher, after its push: an open loan is shut (one read when it is not open, as under contention).</summary>
    protected virtual void Pushed()
    {
    }

    /// <summary>
    /// Owner, after it took what was pushed and before it runs it: each of those ops was announced (<see cref="Pushing"/>)
    /// and runs now, so the partition answers the announces (it reclaims) and its next rest may lend again. A push that
    /// lands before the owner rests is taken here, not after a failed give-back: without this nothing answered its
    /// announce, and the partition, free and idle, kept its loan shut until some later turn.
    /// </summary>
    protected virtual void TookPushed()
    {
    }

    /// <summary>Owner: <paramref name="op"/> (<c>null</c>: the take or the rest) threw <paramref name="error"/>; the turn goes on.</summary>
    protected abstract void Faulted(ITurnOp? op, Exception error);

    /// <summary>
    /// Owner, before it runs <paramref name="op"/>: <c>true</c> when the op goes elsewhere with the turn (an actor's
    /// message goes to its actor), which then owns the turn and must <see cref="Resume"/> it with <paramref name="rest"/>
    /// (the ops after this one, first first); the owner returns at once. <c>false</c> (the default): the op runs here.
    /// </summary>
    protected virtual bool TryHandOver(ITurnOp op, ITurnOp? rest) => false;

    /// <summary>Asserts that some thread holds the turn (only its owner may touch the partition's state).</summary>
    [Conditional("DEBUG")]
    protected void AssertTaken() => Debug.Assert(IsTaken, "A turn's state is touched only inside it.");

    /// <summary>Owner: runs <paramref name="first"/> (a chain, first first), then what was pushed, and gives the turn back.</summary>
    private void Continue(ITurnOp? first, int ran)
    {
        while (true)
        {
            while (first is not null)
            {
                var next = first.NextOp;
                first.NextOp = null;
                if (TryHandOverSafely(first, next))
                {
                    return; // the turn went with the op: its new owner runs the rest
                }

                RunSafely(first);
                ran++;
                first = next;
            }

            var seen = Volatile.Read(ref _head);
            Debug.Assert(seen is not null, "Only the owner gives the turn back.");
            if (ReferenceEquals(seen, Owned))
            {
                try
                {
                    Resting();
                }
                catch (Exception error)
                {
                    Faulted(null, error);
                }

                if (ReferenceEquals(Interlocked.CompareExchange(ref _head, _sealOnGiveBack ? SealedMark : null, Owned), Owned))
                {
                    return;
                }

                TakenSafely(); // someone pushed after the loan opened: take back what was lent before running it
                continue;
            }

            if (ran >= Throughput && !_sealOnGiveBack)
            {
                // (A sealing turn runs to the end where it is: a dropped partition's requests are rerouted on the actor's thread.)
                // Still owned: the pool runs the rest of the turn, and this caller goes on.
                ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
                return;
            }

            var op = Interlocked.Exchange(ref _head, Owned)!;
            if (_answersPushes)
            {
                TookPushedSafely(); // a call in every exchange cost the contended limiter about 6 % (BENCHMARKS round 17)
            }

            while (!ReferenceEquals(op, Owned))
            {
                var next = op.NextOp!;
                op.NextOp = first;
                first = op;
                op = next;
            }
        }
    }

    private void TakenSafely()
    {
        try
        {
            Taken();
        }
        catch (Exception error)
        {
            Faulted(null, error);
        }
    }

    private void TookPushedSafely()
    {
        try
        {
            TookPushed();
        }
        catch (Exception error)
        {
            Faulted(null, error);
        }
    }

    private void PushedSafely()
    {
        try
        {
            Pushed();
        }
        catch (Exception error)
        {
            Faulted(null, error);
        }
    }

    private bool TryHandOverSafely(ITurnOp op, ITurnOp? rest)
    {
        try
        {
            return TryHandOver(op, rest);
        }
        catch (Exception error)
        {
            Faulted(op, error);
            return false;
        }
    }

    private void RunSafely(ITurnOp op)
    {
        try
        {
            Run(op);
        }
        catch (Exception error)
        {
            Faulted(op, error);
        }
    }

    /// <summary>The mark of a taken turn; never run.</summary>
    private sealed class OwnedMark : ITurnOp
    {
        public ITurnOp? NextOp { get; set; }
    }
}
