using ActorQueue.Coordination;
using Akka.Actor;

namespace ActorQueue.Primitives.Coordination;

/// <summary>
/// A facade caller waiting on a primitive: the one facade waiter (<see cref="FacadeWaiter{TResult}"/>) with the
/// primitive's owner (a flow token, a borrower, the facade itself). Its task completes with <c>true</c> when granted.
/// A flow token's waiter that keeps its identity counts as that flow's acquire under way from its making until it is
/// answered (<see cref="FlowToken.IsAsking"/>), so the flow keeps its identity meanwhile.
/// </summary>
internal class PrimitiveWaiter : FacadeWaiter<bool>
{
    /// <summary>Whether this waiter counts in its flow token's asks (from its making until it is answered).</summary>
    private readonly bool _asks;

    /// <param name="coordinator">The coordinator that serves it.</param>
    /// <param name="owner">Its owner: a flow token, a borrower, the facade.</param>
    /// <param name="keepsIdentity">
    /// Whether a flow token <paramref name="owner"/> keeps its identity until this waiter is answered: the capacity
    /// limiter's every acquire (a flow's second one must meet the "already waits" check), a lock's reentry only (a
    /// flow that merely waits for the lock must not lend its identity to the tasks it starts meanwhile).
    /// </param>
    public PrimitiveWaiter(IActorRef coordinator, object owner, bool keepsIdentity = true)
        : base(coordinator)
    {
        Owner = owner;
        if (keepsIdentity && owner is FlowToken token)
        {
            _asks = true;
            token.Ask();
        }
    }

    /// <inheritdoc />
    public override object? Owner { get; }

    /// <inheritdoc />
    protected override void OnAnswered()
    {
        if (_asks)
        {
            ((FlowToken)Owner!).Answered();
        }
    }

    /// <inheritdoc />
    public override void Undelivered() => Fail(new ObjectDisposedException("primitive", "The primitive has been disposed."));

    /// <inheritdoc />
    protected override bool ResultOf(in PermitGrant grant) => true;
}

/// <summary>The replies of <see cref="CoordinatorProtocol"/>: a grant is <c>Acquired</c>, a wait says nothing, a failure is <c>Refused</c>.</summary>
internal sealed class CoordinatorReplies : IPermitReplies
{
    public static readonly CoordinatorReplies Instance = new();

    /// <inheritdoc />
    public object Granted(long requestId, in PermitGrant grant) => new CoordinatorProtocol.Acquired(requestId);

    /// <inheritdoc />
    public object? Queued(long requestId, in PermitSnapshot now) => null;

    /// <inheritdoc />
    public object Failed(long requestId, Exception error) => new CoordinatorProtocol.Refused(requestId, error.Message);
}
