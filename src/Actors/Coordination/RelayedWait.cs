using Akka.Actor;

namespace ActorQueue.Coordination;

/// <summary>
/// What a caller awaits in place of an async method's task: the answer of work that runs beside it (a traced wait,
/// which opens and ends its span around the grant), relayed into a <see cref="FacadeWaiter{TResult}"/>, so the caller
/// resumes as every facade waiter's caller does (<see cref="WaiterContinuations.Schedule"/>: a captured context that
/// refuses the continuation has the thread pool run it). Awaiting the async method's own task instead, .NET posted the
/// continuation to the refusing context and let its throw go unhandled on the thread pool, which ended the process.
/// No gate or actor serves it: it is completed only by <see cref="RelayAsync"/>.
/// </summary>
/// <typeparam name="TResult">The relayed answer.</typeparam>
internal sealed class RelayedWait<TResult> : FacadeWaiter<TResult>
{
    private RelayedWait()
        : base(ActorRefs.Nobody)
    {
    }

    /// <summary>Runs <paramref name="answer"/> beside the caller, who awaits what it gives or throws.</summary>
    /// <param name="answer">The work; its own awaits must not capture the caller's context (<c>ConfigureAwait(false)</c>).</param>
    /// <returns>The relay's completion, awaited once by the caller.</returns>
    public static ValueTask<TResult> Relay(ValueTask<TResult> answer)
    {
        if (answer.IsCompleted)
        {
            return answer; // nothing to resume: the caller's await does not post anywhere
        }

        var relay = new RelayedWait<TResult>();
        _ = relay.RelayAsync(answer);
        return relay.Completion;
    }

    /// <inheritdoc />
    public override void Undelivered() => System.Diagnostics.Debug.Fail("A relayed wait is never sent to an actor.");

    /// <inheritdoc />
    protected override TResult ResultOf(in PermitGrant grant) =>
        throw new InvalidOperationException("A relayed wait is answered by its relay, never granted by a gate.");

    /// <summary>Awaits <paramref name="answer"/> and completes this waiter with its result, failure or cancellation.</summary>
    private async Task RelayAsync(ValueTask<TResult> answer)
    {
        try
        {
            TrySetResult(await answer.ConfigureAwait(false));
        }
        catch (Exception error)
        {
            Fail(error); // a cancellation stays one: GetStatus reports an OperationCanceledException as Canceled
        }
    }
}
