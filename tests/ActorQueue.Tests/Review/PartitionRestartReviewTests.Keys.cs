using System.Diagnostics;
using ActorQueue.Actors;

namespace ActorQueue.Tests.Review;

public sealed partial class PartitionRestartReviewTests
{
    /// <summary>What a <see cref="FaultyKey"/> throws.</summary>
    private sealed class KeyFault(string message) : Exception(message);

    /// <summary>Holds a thread once, until let go.</summary>
    private sealed class Gate
    {
        public ManualResetEventSlim Entered { get; } = new();

        public ManualResetEventSlim Go { get; } = new();

        public void Hold()
        {
            Entered.Set();
            Go.Wait(TimeSpan.FromSeconds(30));
        }
    }

    /// <summary>A key whose hash holds its caller at a gate, once, in a place a test names; equal by name.</summary>
    private sealed class RacingKey(string name) : IEquatable<RacingKey>
    {
        private Gate? _making;
        private Gate? _withdrawing;
        private Gate? _routing;

        /// <summary>Holds inside <c>TryMake</c>'s publication of the key's partition.</summary>
        public Gate? Making { init => _making = value; }

        /// <summary>Holds inside <c>TryMake</c>'s withdrawal of it (<c>PartitionTable.Remove</c>), then throws.</summary>
        public Gate? Withdrawing { init => _withdrawing = value; }

        /// <summary>Holds inside the actor's routing of the key's call.</summary>
        public Gate? Routing { init => _routing = value; }

        public bool Equals(RacingKey? other) => other is not null && other.ToString() == name;

        public override bool Equals(object? obj) => Equals(obj as RacingKey);

        public override int GetHashCode()
        {
            var frames = new StackTrace().GetFrames().Select(frame => frame.GetMethod()).ToList();
            // By name: a frame of a generic class over a reference type is its shared code's (PartitionTable`1[__Canon]).
            bool Inside(string method, Type type) => frames.Any(frame => frame?.Name == method && frame.DeclaringType?.Name == type.Name);
            if (Inside("Remove", typeof(PartitionTable<Partition>)) && Interlocked.Exchange(ref _withdrawing, null) is { } withdrawing)
            {
                withdrawing.Hold();
                throw new KeyFault($"key {name} cannot be hashed as its partition is withdrawn");
            }

            if (Inside("TryMake", typeof(PartitionedGatekeeper)) && Interlocked.Exchange(ref _making, null) is { } making)
            {
                making.Hold();
            }

            if (Inside("Route", typeof(PartitionedGatekeeperActor)) && Interlocked.Exchange(ref _routing, null) is { } routing)
            {
                routing.Hold();
            }

            return StringComparer.Ordinal.GetHashCode(name);
        }

        public override string ToString() => name;
    }

    /// <summary>A key whose <c>GetHashCode</c> and <c>Equals</c> throw where a test arms it; equal by name otherwise.</summary>
    private sealed class FaultyKey(string name) : IEquatable<FaultyKey>
    {
        private volatile bool _throwsOnActor;
        private volatile bool _throwsAlways;
        private volatile bool _throwsInMake;

        /// <summary>Throws in the partitioned limiter's actor (a handler of it on the stack), never in a caller's code.</summary>
        public bool ThrowsOnActor { get => _throwsOnActor; set => _throwsOnActor = value; }

        /// <summary>Throws wherever it is called.</summary>
        public bool ThrowsAlways { get => _throwsAlways; set => _throwsAlways = value; }

        /// <summary>Throws inside <c>PartitionedGatekeeper.TryMake</c> only (after its lookups found no partition).</summary>
        public bool ThrowsInMake { get => _throwsInMake; set => _throwsInMake = value; }

        public bool Equals(FaultyKey? other)
        {
            Check();
            return other is not null && other.ToString() == name;
        }

        public override bool Equals(object? obj) => Equals(obj as FaultyKey);

        public override int GetHashCode()
        {
            Check();
            return StringComparer.Ordinal.GetHashCode(name);
        }

        public override string ToString() => name;

        private void Check()
        {
            if (ThrowsAlways || (ThrowsOnActor && OnTheActor()) || (ThrowsInMake && Inside(frame => frame.Name == "TryMake")))
            {
                throw new KeyFault($"key {name} cannot be hashed here");
            }
        }

        /// <summary>
        /// Called by the partitioned limiter's actor (a handler's frame is on the stack) and not by this test's code (a
        /// test's continuation may run inline on the actor's thread, inside a grant).
        /// </summary>
        private static bool OnTheActor() =>
            Inside(method => method.DeclaringType == typeof(PartitionedGatekeeperActor))
            && !Inside(method => method.DeclaringType is { } type && type != typeof(FaultyKey) && (type == typeof(PartitionRestartReviewTests) || type.DeclaringType == typeof(PartitionRestartReviewTests)));

        private static bool Inside(Func<System.Reflection.MethodBase, bool> frame) =>
            new StackTrace().GetFrames().Any(each => each.GetMethod() is { } method && frame(method));
    }
}
