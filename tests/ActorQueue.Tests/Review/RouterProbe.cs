using System.Collections;
using System.Reflection;
using ActorQueue.Actors;
using Akka.Actor;

namespace ActorQueue.Tests.Review;

/// <summary>Reads a queue's router state that no message exposes, for tests that must act at an exact point.</summary>
internal static class RouterProbe
{
    /// <summary>How many joins wait at <paramref name="queue"/>'s router (an in-memory one, local).</summary>
    public static int JoinsWaiting(WorkQueue<int> queue)
    {
        const BindingFlags Private = BindingFlags.Instance | BindingFlags.NonPublic;
        var router = typeof(ActorCell).GetProperty("Actor", Private)!.GetValue(((ActorRefWithCell)queue.Router).Underlying)!;
        var waiters = router.GetType().GetField("_waiters", Private)!.GetValue(router)!;
        return ((ICollection)typeof(LifecycleWaiters).GetField("_joiners", Private)!.GetValue(waiters)!).Count;
    }
}
