using ActorQueue.Actors;
using ActorQueue.Coordination;
using Akka.Actor;
using Akka.Event;

namespace ActorQueue.Cluster;

// A cluster limiter's agent when one of its handlers throws (a defect, or a message it cannot read). Akka's default
// supervision would restart it empty: its waiters failed as "disposed" (and one taken off the books by the failed
// message never answered), its callers' leases unknown (their releases ignored, so the gatekeeper's permits leak), and
// the incarnation it followed forgotten. Nothing of that can be rebuilt by a new instance (a facade lease knows only its
// id), so the agent keeps its books instead, as after a message handled, and answers the one request the failed message
// was about with a failure that names the cause.
internal partial class LimiterAgentActor
{
    /// <summary>
    /// Runs the handler of <paramref name="message"/>; if it throws, the agent logs it, keeps its books and goes on, and
    /// the request the message was about is answered with the failure (<see cref="AnswerFailed"/>).
    /// </summary>
    /// <returns>Whether the message was handled (a message whose handler threw counts as handled).</returns>
    private bool ReceiveKeepingBooks(Receive receive, object message)
    {
        // Looked up before the handler runs: it may take the request off the books before it throws.
        var (id, request) = RequestOf(message);
        try
        {
            return base.AroundReceive(receive, message);
        }
        catch (Exception error)
        {
            _log.Error(error, "Cluster limiter {0}: its node agent failed handling {1}; it keeps its {2} waiter(s) and {3} lease(s) and goes on",
                _displayName, message.GetType().Name, _pending.Count, _held.Count);
            // An actor's acquire (alone or after its release) is answered by AnswerFailedActor; a facade's, or one the
            // gatekeeper's reply names (looked up above), by AnswerFailed.
            var failure = Failure("failed handling this request", error);
            if ((message as GatekeeperProtocol.Acquire ?? (message as GatekeeperProtocol.ReleaseAndAcquire)?.Next) is { } acquire)
            {
                AnswerFailedActor(acquire, failure);
            }
            else if (request is not null)
            {
                AnswerFailed(id, request, failure);
            }
            else if (message is AwaitedResize { Applied: var answer } && !_resizeAnswers.ContainsValue(answer))
            {
                answer.TrySetException(failure); // not kept, so never applied: its caller is told now (HandleAwaitedResize)
            }

            return true;
        }
    }

    /// <summary>What a caller whose request the agent failed on is failed with: the limiter's name, <paramref name="how"/> and the cause.</summary>
    private InvalidOperationException Failure(string how, Exception error) =>
        new($"The node agent of cluster limiter '{_displayName}' {how}: {error.GetType().Name}: {UserText.MessageOf(error)}", error);

    /// <summary>The request a message is about and its id (0 when the message names none yet: a facade request arriving).</summary>
    private (long Id, PermitWaiter? Request) RequestOf(object message) => message switch
    {
        ClusterAcquireRequest request => (0, request),
        RemoteGranted granted => (granted.RequestId, _pending.GetValueOrDefault(granted.RequestId)),
        RemoteRejected rejected => (rejected.RequestId, _pending.GetValueOrDefault(rejected.RequestId)),
        RemoteQueued queued => (queued.RequestId, _pending.GetValueOrDefault(queued.RequestId)),
        WaitExpired expired => (expired.RequestId, _pending.GetValueOrDefault(expired.RequestId)),
        _ => (0, null),
    };

    /// <summary>
    /// An actor's acquire failed: its request, if it was booked and not granted, is answered as <see cref="AnswerFailed"/>
    /// does; if it was not booked yet, the actor is told the failure.
    /// </summary>
    private void AnswerFailedActor(GatekeeperProtocol.Acquire acquire, Exception failure)
    {
        if (Sender.IsNobody())
        {
            return;
        }

        if (_idByActorRequest.TryGetValue((Sender, acquire.RequestId), out var id)
            && (_pending.GetValueOrDefault(id) ?? _held.GetValueOrDefault(id)) is { } request)
        {
            AnswerFailed(id, request, failure);
            return;
        }

        _idByActorRequest.Remove((Sender, acquire.RequestId));
        Sender.Tell(GatekeeperReplies.Instance.Failed(acquire.RequestId, failure));
    }

    /// <summary>
    /// The request a failed message was about leaves the books and is failed with <paramref name="failure"/>, unless it
    /// was granted: a held lease stays its caller's (an actor's grant is told as it is booked; a facade request still
    /// unanswered was not told, so its lease goes back). A request the gatekeeper may know (waiting, or taken off the
    /// waiting list by the failed grant) is cancelled there, which also frees a grant it made.
    /// </summary>
    /// <param name="id">The request's id; 0 when the message named none, so the books are searched for the request.</param>
    /// <param name="request">The request the failed message was about.</param>
    /// <param name="failure">What its caller is failed with: the agent's failure, naming the cause.</param>
    private void AnswerFailed(long id, PermitWaiter request, Exception failure)
    {
        if (id == 0)
        {
            id = _pending.Concat(_held).FirstOrDefault(entry => ReferenceEquals(entry.Value, request)).Key; // 0 if booked nowhere
        }

        AssertBookedOnce(id);
        if (_held.ContainsKey(id))
        {
            if (request is not ClusterAcquireRequest { IsCompleted: false })
            {
                return; // granted: its caller holds the lease
            }

            ReleaseHeld(id);
        }
        else if (id != 0)
        {
            _pending.Remove(id);
            Send(new RemoteCancel(_gatekeeper.Epoch, id));
        }

        Forget(id, request);
        request.Fail(failure);
    }

    /// <summary>A request is waiting or held, never both.</summary>
    [System.Diagnostics.Conditional("DEBUG")]
    private void AssertBookedOnce(long id) =>
        System.Diagnostics.Debug.Assert(!(_pending.ContainsKey(id) && _held.ContainsKey(id)), $"request {id} is both waiting and held");
}
