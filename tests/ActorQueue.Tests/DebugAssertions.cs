using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Akka.Actor;
using Akka.Actor.Internal;
using Akka.Dispatch;

namespace ActorQueue.Tests;

/// <summary>
/// Makes a failed <c>Debug.Assert</c> inside an actor fail the test that was running, instead of hanging it. The test
/// host turns a failed assert into an exception; thrown inside an actor, that exception only restarts the actor, which
/// drops the message it was handling (a dispose request, say) and loses its state, and the test then waits for ever
/// for a reply that never comes (a Debug run of the limiter tests hung this way). Here an assert that fails on an
/// actor's thread is written to stderr and kept for its actor system, the actor carries on, and the test kit fails the
/// test at its teardown with the assert's message (<see cref="ActorQueueTestKit"/>); elsewhere the host's listeners
/// throw as before. Release builds compile no asserts, so this only acts in Debug.
/// </summary>
internal static class DebugAssertions
{
    /// <summary>The failed asserts of each actor system, taken by its test's teardown.</summary>
    private static readonly ConditionalWeakTable<ActorSystem, ConcurrentQueue<string>> Failures = [];

    [ModuleInitializer]
    internal static void Install()
    {
        var hosts = Trace.Listeners.Cast<TraceListener>().ToArray();
        Trace.Listeners.Clear();
        Trace.Listeners.Add(new ActorAwareListener(hosts));
    }

    /// <summary>The asserts that failed inside <paramref name="system"/>'s actors since the last call, each with its stack.</summary>
    public static IReadOnlyList<string> TakeFailures(ActorSystem system)
    {
        if (!Failures.TryGetValue(system, out var failures))
        {
            return [];
        }

        var taken = new List<string>();
        while (failures.TryDequeue(out var failure))
        {
            taken.Add(failure);
        }

        return taken;
    }

    /// <summary>Keeps a failure on an actor's thread; hands everything else to the listeners that were installed before.</summary>
    private sealed class ActorAwareListener(TraceListener[] hosts) : TraceListener
    {
        public override void Fail(string? message, string? detailMessage)
        {
            var stack = new StackTrace(1, fNeedFileInfo: true);
            if (InsideActor(stack) && InternalCurrentActorCellKeeper.Current is { } cell)
            {
                var failure = $"Debug.Fail in {cell.Self.Path}: {message} {detailMessage}{Environment.NewLine}{stack}";
                Console.Error.WriteLine(failure);
                Failures.GetOrCreateValue(cell.System).Enqueue(failure);
                return;
            }

            foreach (var host in hosts)
            {
                host.Fail(message, detailMessage);
            }
        }

        /// <summary>
        /// Whether an actor's cell runs below: its current cell alone does not say, as it is a thread-static slot that
        /// TestKit sets for its test bodies and that work run before on a thread may leave behind.
        /// </summary>
        private static bool InsideActor(StackTrace stack) =>
            stack.GetFrames().Any(frame => frame.GetMethod()?.DeclaringType is { } type && (type == typeof(ActorCell) || type == typeof(Mailbox)));

        public override void Write(string? message)
        {
            foreach (var host in hosts)
            {
                host.Write(message);
            }
        }

        public override void WriteLine(string? message)
        {
            foreach (var host in hosts)
            {
                host.WriteLine(message);
            }
        }
    }
}
