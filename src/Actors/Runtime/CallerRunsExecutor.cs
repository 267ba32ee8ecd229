using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;

namespace ActorQueue.Runtime;

/// <summary>
/// The executor of ActorQueue's coordinator dispatcher: a mailbox that becomes ready because a thread-pool thread
/// outside any actor sent it a message runs at once on that thread, the rest is queued on the .NET thread pool
/// like Akka's <c>default-executor</c>.
/// </summary>
/// <remarks>
/// <para>An actor still handles one message at a time: Akka schedules a mailbox only after winning its "scheduled"
/// flag, so whichever thread runs it is its only runner, and a sender that finds it busy only enqueues. A caller of
/// an idle gatekeeper therefore gets its answer before <c>Tell</c> returns and goes on without a thread-pool hop,
/// while callers that meet a busy gatekeeper are served by the thread already running it (up to the dispatcher's
/// <c>throughput</c>, then it is queued on the pool).</para>
/// <para>Never inline: inside an actor (its handler's sends are queued, so actors never nest), on a thread that is
/// not a pool thread (timers, I/O loops, UI and test threads), or inside a run this executor started.
/// Continuations of completions set by the actor are still queued (<c>RunContinuationsAsynchronously</c>); only a
/// caller whose answer was already there when it awaited goes on synchronously, on its own thread.</para>
/// <para>Selected in HOCON with <c>executor = "ActorQueue.Runtime.CallerRunsExecutorConfigurator, ActorQueue.Actors"</c>.</para>
/// </remarks>
public sealed class CallerRunsExecutorConfigurator : ExecutorServiceConfigurator
{
    /// <summary>Created by Akka from a dispatcher's configuration.</summary>
    /// <param name="config">The dispatcher's configuration section.</param>
    /// <param name="prerequisites">The actor system's dispatcher prerequisites.</param>
    public CallerRunsExecutorConfigurator(Config config, IDispatcherPrerequisites prerequisites)
        : base(config, prerequisites)
    {
    }

    /// <summary>Whether this thread is inside a mailbox run this executor started inline.</summary>
    [ThreadStatic]
    private static bool t_running;

    /// <summary>Mailbox runs made inline on this thread.</summary>
    [ThreadStatic]
    private static int t_inlineRuns;

    /// <summary>How many mailbox runs this thread has made inline, for tests that must know a send ran on its caller.</summary>
    internal static int InlineRunsOnThisThread => t_inlineRuns;

    /// <inheritdoc />
    public override ExecutorService Produce(string id) => new CallerRunsExecutor(id);

    /// <summary>Runs a ready mailbox on the sending pool thread when that is safe, else queues it on the pool.</summary>
    private sealed class CallerRunsExecutor(string id) : ExecutorService(id)
    {
        /// <inheritdoc />
        public override void Execute(IRunnable run)
        {
            if (t_running || !Thread.CurrentThread.IsThreadPoolThread || !ActorCell.GetCurrentSelfOrNoSender().IsNobody())
            {
                ThreadPool.UnsafeQueueUserWorkItem(run, preferLocal: false);
                return;
            }

            t_running = true;
            t_inlineRuns++;
            try
            {
                run.Run();
            }
            finally
            {
                t_running = false;
            }
        }

        /// <inheritdoc />
        public override void Shutdown()
        {
            // The thread pool is shared and outlives every dispatcher.
        }
    }
}
