using ActorQueue.Coordination;

namespace ActorQueue.Actors;

/// <summary>
/// The counts and limits the gatekeeper publishes after every message, for synchronous reads by the facade. One
/// writer per value: the gatekeeper, except that a facade's <c>Resize</c> writes the limits it asked for at once (the
/// gatekeeper writes the same values when it applies them), and that the held count lives in the <see cref="Loan"/>'s
/// word, which callers claiming from or returning into an open loan change too (so it is exact at every instant).
/// </summary>
internal sealed class LimiterCounts
{
    /// <summary>What the gatekeeper writes on every turn, on cache lines of its own (<see cref="TurnWritten"/>).</summary>
    private TurnWritten _written = new() { HeldWritten = -1 };

    public LimiterCounts() => Turn = new GateTurn(Loan);

    /// <summary>
    /// The limits callers read, with the number of the facade resize they come from: replaced whole, by a CAS that
    /// checks that number, never written field by field — so the gatekeeper's publication of a resize it applied can
    /// never overwrite the limits of a newer facade <c>Resize</c> that returned meanwhile (a check and a separate store
    /// could: the review test <c>ResizeOrderReviewTests</c> caught five leases claimed after <c>Resize(maxRunning: 2)</c>).
    /// </summary>
    private PublishedLimits _limits = new(0, 0, -1);

    /// <summary>The facade's resizes so far (<see cref="PublishResize"/>).</summary>
    private long _resizes;

    /// <summary>The newest facade resize the gatekeeper has applied; the gatekeeper's only (it survives a restart here).</summary>
    private long _handledResize;

    /// <summary>The limits the gatekeeper last applied (<see cref="PublishApplied"/>); a restarted gatekeeper starts from them. The gatekeeper's only.</summary>
    public (int MaxRunning, int? MaxQueued)? Applied { get; private set; }

    /// <summary>
    /// The rates the gatekeeper runs and the clock stamp its gate's time counts from; a restarted gatekeeper goes on with
    /// them, so what they granted stays spent (rates made anew are full: a restart granted a whole period again,
    /// <c>LocalSuspectsReviewTests</c>). <c>null</c> until a gatekeeper with rates is made. The gatekeeper's only.
    /// </summary>
    public (IRestingPolicy[] Rates, long StartedAt)? Rates { get; set; }

    /// <summary>
    /// What a restarting gatekeeper hands its next instance (<see cref="GatekeeperActor.RestartCarry"/>): the callers it
    /// had queued, facade and actor callers alike, in serving order, each with what was left of its wait, and the books of
    /// its actor callers. Its next instance takes it as it starts, before its mailbox and what was left in its turn.
    /// <c>null</c> when no restart is under way. The gatekeeper's only.
    /// </summary>
    public GatekeeperActor.RestartCarry? CarriedOver { get; set; }

    /// <summary>Held now: what the gatekeeper last published, and what callers claimed from or returned into its loan since.</summary>
    public int Running => Loan.Running;

    public int Waiting => Volatile.Read(ref _written.Waiting);

    /// <summary>
    /// The leases granted so far, by the gatekeeper (as of its last publication) and from its loan: it moves whenever any
    /// caller is granted one — a facade's, an actor's, a RateLimiting adapter's — so a reader that sees it unchanged
    /// knows nobody was granted a lease since (a restarted gatekeeper's gate numbers on from its predecessor's last lease).
    /// </summary>
    public long Leases => Volatile.Read(ref _written.GateLeases) + Loan.Claims;

    /// <summary>
    /// What the waiters ask for: their permits (a concurrency limiter's) or their token estimates (a model API
    /// limiter's), as the gate sums them on every entry and exit of its queue; published with <see cref="Waiting"/>.
    /// </summary>
    public long Queued => Volatile.Read(ref _written.Queued);

    public int MaxRunning => Volatile.Read(ref _limits).MaxRunning;

    public int? MaxQueued => Volatile.Read(ref _limits).MaxQueued is var maxQueued and >= 0 ? maxQueued : null;

    /// <summary>The free permits a gatekeeper without rates lends while nobody waits, and the held count.</summary>
    public PermitLoan Loan { get; } = new();

    /// <summary>The turn over a gatekeeper without rates, which its facade's contended requests and releases run in.</summary>
    public GateTurn Turn { get; }

    /// <summary>Publishes the counts of a publisher that does not weigh its waiters (a cluster agent's): <see cref="Queued"/> counts one per waiter.</summary>
    public void Publish(int running, int waiting) => Publish(running, waiting, waiting);

    /// <summary>Publishes the held count, the waiters and what they ask for (<see cref="Queued"/>).</summary>
    public void Publish(int running, int waiting, long queued)
    {
        // Against a copy kept here, not the word: reading the word to compare still waits for the line callers write.
        if (running != _written.HeldWritten)
        {
            Loan.Publish(running);
            _written.HeldWritten = running;
        }

        Volatile.Write(ref _written.Waiting, waiting);
        Volatile.Write(ref _written.Queued, queued);
    }

    /// <summary>Gatekeeper, with its counts: the number of the last lease its gate granted (<see cref="Leases"/>; a restarted instance's gate numbers on from its predecessor's).</summary>
    public void PublishLeases(long lastLeaseId) => Volatile.Write(ref _written.GateLeases, lastLeaseId);

    /// <summary>
    /// Gatekeeper: the held count its loan's word holds now (read by its reclaim at the start of a message; -1 when
    /// unknown, e.g. once the loan was closed with claims in it), so <see cref="Publish(int, int, long)"/> writes the word only when
    /// the count changes.
    /// </summary>
    public void NoteHeld(int held) => _written.HeldWritten = held;

    /// <summary>Facade, while it is made: the limits it starts with.</summary>
    public void PublishLimits(int maxRunning, int? maxQueued) => Volatile.Write(ref _limits, new PublishedLimits(0, maxRunning, maxQueued ?? -1));

    /// <summary>
    /// Facade <c>Resize</c>: numbers the resize and publishes its limits at once, unless a racing newer resize published
    /// its own first; the gatekeeper applies it when its <see cref="FacadeResize"/> with the number returned arrives.
    /// </summary>
    public long PublishResize(int maxRunning, int? maxQueued)
    {
        var sequence = Interlocked.Increment(ref _resizes);
        Replace(new PublishedLimits(sequence, maxRunning, maxQueued ?? -1), atMost: sequence - 1);
        return sequence;
    }

    /// <summary>
    /// Gatekeeper: publishes the limits it has just applied — of the facade resize <paramref name="sequence"/>, or of
    /// an actor's resize or its start when <c>null</c> — unless a facade resize it has not applied yet published its own
    /// (that call returned with its limits showing; its message comes later and publishes them again).
    /// </summary>
    public void PublishApplied(int maxRunning, int? maxQueued, long? sequence = null)
    {
        Applied = (maxRunning, maxQueued);
        // The limits in force include every facade resize up to the newest applied, whichever order their messages came in.
        _handledResize = Math.Max(_handledResize, sequence ?? 0);
        Replace(new PublishedLimits(_handledResize, maxRunning, maxQueued ?? -1), atMost: _handledResize);
    }

    /// <summary>Replaces the limits with <paramref name="next"/> while the ones published come from a resize numbered at most <paramref name="atMost"/>.</summary>
    private void Replace(PublishedLimits next, long atMost)
    {
        var seen = Volatile.Read(ref _limits);
        while (seen.Sequence <= atMost)
        {
            var was = Interlocked.CompareExchange(ref _limits, next, seen);
            if (ReferenceEquals(was, seen))
            {
                return;
            }

            seen = was;
        }
    }

    /// <summary>Limits as published, with the facade resize they come from (0: none); -1 in <see cref="MaxQueued"/> for no bound.</summary>
    private sealed record PublishedLimits(long Sequence, int MaxRunning, int MaxQueued);

    /// <summary>
    /// The counts the gatekeeper writes on every turn, padded to cache lines of their own: beside the references and
    /// limits every caller reads (<see cref="Loan"/>, <see cref="Turn"/>, the limits), each turn's writes made every
    /// contended caller's next read of them a cache miss on the other core (false sharing).
    /// </summary>
    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Explicit, Size = 3 * CacheLine)]
    internal struct TurnWritten
    {
        /// <summary>How many wait (<see cref="Waiting"/>).</summary>
        [System.Runtime.InteropServices.FieldOffset(CacheLine)]
        public int Waiting;

        /// <summary>The held count last written into the loan, a copy kept here (<see cref="Publish(int, int, long)"/>).</summary>
        [System.Runtime.InteropServices.FieldOffset(CacheLine + 4)]
        public int HeldWritten;

        /// <summary>The waiters' demand, in permits or tokens (<see cref="Queued"/>).</summary>
        [System.Runtime.InteropServices.FieldOffset(CacheLine + 8)]
        public long Queued;

        /// <summary>The gate's last lease number as of the gatekeeper's last publication (<see cref="PublishLeases"/>).</summary>
        [System.Runtime.InteropServices.FieldOffset(CacheLine + 16)]
        public long GateLeases;
    }

    /// <summary>A cache line's bytes on the machines .NET runs on (x64, Arm64).</summary>
    internal const int CacheLine = 64;
}
