using System.Diagnostics;
using ActorQueue.Coordination;
using ActorQueue.Primitives.Coordination;

namespace ActorQueue.Primitives;

/// <summary>
/// A semaphore's value, shared by the facade and the coordinator, and the coordinator's permit policy. Two counts
/// live in one 64-bit word, so one atomic step changes either or both and their sum never passes
/// <see cref="int.MaxValue"/>: the low half is the permits the coordinator's gate may grant (changed by the coordinator
/// only); the high half is releases already counted but not yet handed to the gate (raised by whoever releases,
/// moved into the low half by the coordinator when the release reaches it).
/// </summary>
/// <remarks>
/// So a facade release is refused synchronously at the maximum and counts in <see cref="Value"/> at once, while the
/// gate sees a permit only once its release message arrives: the gate never finds a waiter that fits without being
/// told (no grant races a message it has not handled). A grant takes its permit before the caller resumes.
/// </remarks>
[DebuggerDisplay("free {Value}, waiting {Waiting}")]
internal sealed class SemaphoreState : PrimitiveState, IPermitPolicy
{
    /// <summary>Why a release is refused.</summary>
    public const string FullMessage = "Releasing would raise the semaphore's value past its maximum, 2147483647 (int.MaxValue)";

    /// <summary>One release counted, not yet handed to the gate.</summary>
    private const long OneReleased = 1L << 32;

    /// <summary>Low half: permits the gate may grant. High half: releases counted, not yet handed to the gate.</summary>
    private long _word;

    public SemaphoreState(int initialValue) => _word = initialValue;

    /// <summary>Free permits now: a release counts at once, a grant before its caller resumes.</summary>
    public int Value
    {
        get
        {
            var word = Volatile.Read(ref _word);
            return Grantable(word) + Released(word);
        }
    }

    /// <inheritdoc />
    public PermitMeasure Measure => PermitMeasure.Permits;

    /// <inheritdoc />
    public bool IsTimed => false;

    /// <inheritdoc />
    public long Limit => long.MaxValue; // a semaphore of 0 waits for a release; it never refuses a request

    /// <inheritdoc />
    public long InUse => 0; // anyone may release, so the semaphore counts free permits only

    /// <summary>Counts one release (a facade caller's, an actor's); <c>false</c> when the value is already <see cref="int.MaxValue"/>.</summary>
    public bool TryRelease()
    {
        while (true)
        {
            var word = Volatile.Read(ref _word);
            if (Grantable(word) + (long)Released(word) >= int.MaxValue)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _word, word + OneReleased, word) == word)
            {
                return true;
            }
        }
    }

    /// <inheritdoc />
    public long Available(TimeSpan now) => Grantable(Volatile.Read(ref _word));

    /// <inheritdoc />
    public bool CanTake(long cost, TimeSpan now) => Available(now) >= cost;

    /// <inheritdoc />
    public void Take(long cost, TimeSpan now) =>
        // Only the coordinator lowers the low half, right after CanTake: it cannot borrow from the high half.
        Interlocked.Add(ref _word, -cost);

    /// <inheritdoc />
    public void Refund(long cost, TimeSpan now)
    {
        // A permit beyond the maximum cannot exist: one that releases filled meanwhile is dropped.
        for (var i = 0; i < cost; i++)
        {
            long word;
            do
            {
                word = Volatile.Read(ref _word);
                if (Grantable(word) + (long)Released(word) >= int.MaxValue)
                {
                    return;
                }
            }
            while (Interlocked.CompareExchange(ref _word, word + 1, word) != word);
        }
    }

    /// <inheritdoc />
    public void Release(long cost, TimeSpan now) =>
        // Releases counted by TryRelease reach the gate: they move from the high half to the low half.
        Interlocked.Add(ref _word, cost - (cost * OneReleased));

    /// <inheritdoc />
    public void Settle(long charged, long actual, TimeSpan now)
    {
        // Permits are held, not consumed.
    }

    /// <inheritdoc />
    public TimeSpan NextAvailableAt(long cost, TimeSpan now) => CanTake(cost, now) ? now : TimeSpan.MaxValue;

    /// <inheritdoc />
    public void Resize(long limit) => throw new NotSupportedException("A semaphore's value changes by releases and grants only.");

    private static int Grantable(long word) => (int)(word & uint.MaxValue);

    private static int Released(long word) => (int)(word >> 32);
}
