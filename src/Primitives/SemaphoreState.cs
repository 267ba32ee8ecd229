using System.Diagnostics;
using ActorQueue.Coordination;
using ActorQueue.Primitives.Coordination;

namespace ActorQueue.Primitives;

/// <summary>
/// A semaphore's value, shared by the facade and the coordinator, and the coordinator's permit policy. One 64-bit word
/// holds the free permits (low half, at most <see cref="int.MaxValue"/>), the waiters announced and not yet gone
/// (bits 32–62) and a closed flag (bit 63), so one compare-and-swap sees and changes all three at once. The channel,
/// written down:
/// <list type="bullet">
/// <item>Acquire (any thread, <see cref="TryTakeOrAnnounce"/>): takes a free permit when nobody waits, else counts
/// itself as a waiter and then sends its waiter to the coordinator. One CAS decides which, so no newcomer takes a
/// permit while anyone is announced (no barging), and two takers never get one permit.</item>
/// <item>Release (any thread, <see cref="TryRelease"/>): adds a free permit (refused at the maximum); when the same CAS
/// saw a waiter, the releaser tells the coordinator.</item>
/// <item>The coordinator: counts an actor caller as a waiter before offering it (<see cref="Announce"/>); uncounts a
/// waiter when it leaves its gate (<see cref="Leave"/>: granted, withdrawn, or not queued at all); and, at the start of
/// every message, sweeps the word into its gate's own copy of the free count (<see cref="Sweep"/>), granting whoever
/// that lets in.</item>
/// </list>
/// </summary>
/// <remarks>
/// <para>Why no wake-up is lost: a permit can sit free while a waiter is counted only if it was released after the
/// waiter was counted (a waiter that finds a free permit and nobody counted takes it instead), and that release's CAS
/// saw the count, so its releaser tells the coordinator, whose sweep on that message finds the permit; or the waiter
/// was counted and its own message, swept on arrival, is still to come. Either way a message follows that sees both.</para>
/// <para>Why the gate's copy is exact: permits leave the word without the coordinator only on the fast path, which
/// needs a count of 0; every waiter in the gate, or being offered, is counted. So from a sweep made while anyone is
/// counted until the count falls to 0, only the coordinator takes from the word, and its copy never exceeds the word;
/// with nobody counted the gate has nobody to grant. The copy changes only by the gate's own takes and refunds and by
/// sweeps, which grant at once what they add, so the gate never finds a head that fits in the middle of a message.</para>
/// </remarks>
[DebuggerDisplay("free {Value}, announced {Announced}, waiting {Waiting}")]
internal sealed class SemaphoreState : PrimitiveState, IPermitPolicy
{
    /// <summary>Why a release is refused.</summary>
    public const string FullMessage = "Releasing would raise the semaphore's value past its maximum, 2147483647 (int.MaxValue)";

    /// <summary>One announced waiter.</summary>
    private const long OneWaiter = 1L << 32;

    /// <summary>The coordinator has stopped: no fast take succeeds any more.</summary>
    private const long Closed = long.MinValue;

    /// <summary>Low half: free permits. Bits 32–62: waiters announced and not yet gone. Bit 63: closed.</summary>
    private long _word;

    /// <summary>The gate's copy of the free permits: set by <see cref="Sweep"/>, lowered by the gate's takes; the coordinator's only.</summary>
    private int _grantable;

    public SemaphoreState(int initialValue)
    {
        _word = initialValue;
        _grantable = initialValue;
    }

    /// <summary>Free permits now: a release counts at once, a grant before its caller resumes.</summary>
    public int Value => Free(Volatile.Read(ref _word));

    /// <summary>Waiters announced and not yet granted or withdrawn (including those whose message is on its way).</summary>
    public int Announced => (int)((Volatile.Read(ref _word) >> 32) & int.MaxValue);

    /// <inheritdoc />
    public PermitMeasure Measure => PermitMeasure.Permits;

    /// <inheritdoc />
    public bool IsTimed => false;

    /// <inheritdoc />
    public long Limit => long.MaxValue; // a semaphore of 0 waits for a release; it never refuses a request

    /// <inheritdoc />
    public long InUse => 0; // anyone may release, so the semaphore counts free permits only

    /// <summary>
    /// A caller acquires: takes a free permit if nobody waits (<c>true</c>), else counts itself as a waiter
    /// (<c>false</c>); it must then send its waiter to the coordinator.
    /// </summary>
    public bool TryTakeOrAnnounce()
    {
        var word = Volatile.Read(ref _word);
        while (true)
        {
            // Nobody announced and not closed: the whole high half is 0.
            var take = word >> 32 == 0 && Free(word) > 0;
            var seen = Interlocked.CompareExchange(ref _word, take ? word - 1 : word + OneWaiter, word);
            if (seen == word)
            {
                return take;
            }

            word = seen;
        }
    }

    /// <summary>Counts one release (a facade caller's, an actor's); <c>false</c> when the value is already <see cref="int.MaxValue"/>.</summary>
    /// <param name="someoneWaits">Whether a waiter was announced: the releaser must then tell the coordinator.</param>
    public bool TryRelease(out bool someoneWaits)
    {
        var word = Volatile.Read(ref _word);
        while (Free(word) < int.MaxValue)
        {
            var seen = Interlocked.CompareExchange(ref _word, word + 1, word);
            if (seen == word)
            {
                someoneWaits = word >> 32 != 0;
                return true;
            }

            word = seen;
        }

        someoneWaits = false;
        return false;
    }

    /// <summary>Coordinator: an actor caller is about to be offered; it counts as a waiter from now on.</summary>
    public void Announce() => Interlocked.Add(ref _word, OneWaiter);

    /// <summary>Coordinator: an announced waiter is granted, withdrawn, or was never queued; it no longer blocks the fast path.</summary>
    public void Leave()
    {
        var after = Interlocked.Add(ref _word, -OneWaiter);
        Debug.Assert(((after >> 32) & int.MaxValue) != int.MaxValue, "only an announced waiter leaves");
    }

    /// <summary>
    /// Coordinator, at the start of every message: takes the word's free count as the gate's, and grants whoever the
    /// permits released since let in.
    /// </summary>
    public void Sweep(PermitGate gate)
    {
        if (Resync() && gate.Waiting > 0)
        {
            gate.Wake();
        }
    }

    /// <summary>Coordinator: offers an announced waiter; unless it now waits in the gate, it leaves at once.</summary>
    public void Offer(PermitGate gate, PermitWaiter waiter)
    {
        if (gate.Offer(waiter) != OfferOutcome.Queued)
        {
            Leave();
        }
    }

    /// <summary>Coordinator, stopping: every later acquire goes to the stopped coordinator and fails.</summary>
    public void Close() => Interlocked.Or(ref _word, Closed);

    /// <inheritdoc />
    public long Available(TimeSpan now) => _grantable;

    /// <inheritdoc />
    public bool CanTake(long cost, TimeSpan now) => _grantable >= cost;

    /// <inheritdoc />
    public void Take(long cost, TimeSpan now)
    {
        // The gate takes only for an announced waiter, so no fast take competes: the word holds at least the copy.
        var after = Interlocked.Add(ref _word, -cost);
        _grantable -= (int)cost;
        Debug.Assert(after >> 32 != 0 && Free(after) >= _grantable, "the gate takes for an announced waiter, from permits the word holds");
    }

    /// <inheritdoc />
    public void Refund(long cost, TimeSpan now)
    {
        // A permit beyond the maximum cannot exist: one that releases filled meanwhile is dropped.
        for (var i = 0; i < cost; i++)
        {
            if (!TryRelease(out _))
            {
                break;
            }
        }

        Resync();
    }

    /// <inheritdoc />
    public void Release(long cost, TimeSpan now) =>
        // Whoever released counted it in the word already; the gate learns of it (and of any other) here.
        Resync();

    /// <inheritdoc />
    public void Settle(long charged, long actual, TimeSpan now)
    {
        // Permits are held, not consumed.
    }

    /// <inheritdoc />
    public TimeSpan NextAvailableAt(long cost, TimeSpan now) => CanTake(cost, now) ? now : TimeSpan.MaxValue;

    /// <inheritdoc />
    public void Resize(long limit) => throw new NotSupportedException("A semaphore's value changes by releases and grants only.");

    /// <summary>The gate's copy := the word's free count; <c>true</c> when that added permits.</summary>
    private bool Resync()
    {
        var before = _grantable;
        _grantable = Free(Volatile.Read(ref _word));
        return _grantable > before;
    }

    private static int Free(long word) => (int)(word & int.MaxValue);
}
