using System.Diagnostics;
using ActorQueue.Coordination;

namespace ActorQueue.Actors;

/// <summary>
/// One call's hold on a <see cref="ModelApiLimiter"/>: a slot in flight, a request and the estimated tokens of the
/// current period. Disposing it frees the slot (the request and tokens stay spent); <see cref="Settle"/> first, once,
/// with what the call really used.
/// </summary>
[DebuggerDisplay("Lease {LeaseId} for {Source}: {EstimatedTokens} tokens estimated, settled {SettledTokens}, released = {IsReleased}")]
public sealed class ModelApiLease : IDisposable, IAsyncDisposable
{
    private const int Open = 0;
    private const int Settled = 1;
    private const int Released = 2;

    /// <summary>The slot in flight.</summary>
    private readonly ConcurrencyLease _slot;

    /// <summary>Where a settle goes.</summary>
    private readonly ITokenSettler _settler;

    /// <summary><see cref="Open"/>, then <see cref="Settled"/> and/or <see cref="Released"/>: each step is taken once, across threads.</summary>
    private int _state;

    private long _settledTokens = -1;

    /// <summary>The limiter its errors name: its name, or "the limiter" when it has none (never the caller's source, which they name beside it).</summary>
    private readonly string _limiter;

    internal ModelApiLease(ConcurrencyLease slot, long estimatedTokens, ITokenSettler settler, string? limiterName = null)
    {
        _slot = slot;
        _settler = settler;
        _limiter = limiterName ?? "the limiter";
        EstimatedTokens = estimatedTokens;
    }

    /// <summary>The lease's number, unique within its limiter (a partition's may repeat once the partition was dropped and made again).</summary>
    public long LeaseId => _slot.LeaseId;

    /// <summary>The source the call was acquired for.</summary>
    public string Source => _slot.Source;

    /// <summary>The tokens the grant took from the current period.</summary>
    public long EstimatedTokens { get; }

    /// <summary>What <see cref="Settle"/> reported; <c>null</c> until then.</summary>
    public long? SettledTokens => Volatile.Read(ref _settledTokens) is var settled and >= 0 ? settled : null;

    /// <summary>Whether the slot has been given back.</summary>
    public bool IsReleased => (Volatile.Read(ref _state) & Released) != 0;

    /// <summary>
    /// Reports the tokens the call really used: what it did not use goes back to the token rate at once (never beyond
    /// one period's worth), and an excess is owed, paid from the next refills before anyone else is granted tokens.
    /// Settle once, before disposing the lease.
    /// </summary>
    /// <param name="actualTokens">The tokens the call used; 0 or more (0 for a call that failed before the model ran).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="actualTokens"/> is negative.</exception>
    /// <exception cref="InvalidOperationException">The lease was settled already, or released (disposed) already.</exception>
    public void Settle(long actualTokens)
    {
        LimitValidation.ActualTokens(actualTokens, nameof(actualTokens), this);
        var was = Interlocked.CompareExchange(ref _state, Settled, Open);
        if (was != Open)
        {
            throw new InvalidOperationException((was & Settled) != 0
                ? $"{Named} was settled already with {SettledTokens} tokens (actualTokens {actualTokens}); a lease settles once"
                : $"{Named} was released before it was settled (actualTokens {actualTokens}); settle before disposing it");
        }

        Volatile.Write(ref _settledTokens, actualTokens);
        _settler.Settle(new SettleTokens(new PermitDemand(1, EstimatedTokens), actualTokens) { LeaseId = LeaseId });
    }

    /// <summary>The lease as its errors name it: its number, its limiter, and the source it was acquired for (built only for an error).</summary>
    internal string Named => $"Lease {LeaseId} of {_limiter} (source '{Source}')";

    /// <summary>Gives the slot in flight back. Idempotent; never throws, also after the limiter was disposed.</summary>
    public void Dispose()
    {
        int was;
        do
        {
            was = Volatile.Read(ref _state);
            if ((was & Released) != 0)
            {
                return;
            }
        }
        while (Interlocked.CompareExchange(ref _state, was | Released, was) != was);

        _slot.Dispose();
    }

    /// <summary>Gives the slot back, as <see cref="Dispose"/>.</summary>
    /// <returns>A completed task.</returns>
    public ValueTask DisposeAsync()
    {
        Dispose();
        return default;
    }
}
