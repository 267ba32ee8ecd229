// snippet: runtime
using ActorQueue.Runtime;
using Akka.Configuration;
// end snippet

namespace ActorQueue.Examples;

public static class Runtime
{
    public static void Run()
    {
        // snippet: runtime
        using var system = ActorQueueRuntime.Create("my-app", ConfigurationFactory.ParseString("actorqueue.queue.put-timeout = 250ms"));
        // end snippet
    }
}
