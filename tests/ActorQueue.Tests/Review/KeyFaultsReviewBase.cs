using System.Diagnostics;
using ActorQueue.Actors;
using Microsoft.Extensions.Time.Testing;

namespace ActorQueue.Tests.Review;

/// <summary>The faulty keys, faults, clock and limiter the reviews of the application's code in odd places share.</summary>
public abstract class KeyFaultsReviewBase : ActorQueueTestKit
{
    private protected static readonly TimeSpan IdleTimeout = TimeSpan.FromMinutes(10);
    private protected readonly FakeTimeProvider _clock = new();

    /// <summary>A partitioned limit of one per key, on <paramref name="clock"/> (the test's fake clock when <c>null</c>).</summary>
    private protected PartitionedConcurrencyLimiter<FaultyKey> Concurrency(string name, TimeProvider? clock = null) =>
        new(new ConcurrencyLimit(1) { TimeProvider = clock ?? _clock }, IdleTimeout, name, system: Sys);

    /// <summary>An exception whose <c>Message</c> (so its <c>ToString</c> too) throws another of its kind.</summary>
    private protected sealed class NastyFault() : Exception("never read")
    {
        public override string Message => throw new NastyFault();
    }

    /// <summary>A key equal by <see cref="Name"/>, whose <c>ToString</c>, or whose <c>GetHashCode</c> on the limiter's actor's thread, throws where a test arms it.</summary>
    private protected sealed class FaultyKey(string name) : IEquatable<FaultyKey>
    {
        private volatile bool _toStringThrows;
        private volatile bool _equalsThrows;

        public string Name { get; } = name;

        /// <summary><c>ToString</c> throws an <see cref="InvalidOperationException"/>.</summary>
        public bool ToStringThrows { get => _toStringThrows; set => _toStringThrows = value; }

        /// <summary><c>GetHashCode</c> throws a <see cref="NastyFault"/> when the partitioned limiter's actor routes the key.</summary>
        public bool HashThrowsOnActor { get; init; }

        /// <summary><c>Equals</c> throws an <see cref="InvalidOperationException"/>.</summary>
        public bool EqualsThrows { get => _equalsThrows; set => _equalsThrows = value; }

        /// <summary>The hash, when a test sets one (keys that collide); else the name's.</summary>
        public int? Hash { get; init; }

        public bool Equals(FaultyKey? other) =>
            EqualsThrows ? throw new InvalidOperationException($"key {Name} cannot be compared") : other is not null && other.Name == Name;

        public override bool Equals(object? obj) => Equals(obj as FaultyKey);

        public override int GetHashCode()
        {
            if (HashThrowsOnActor
                && new StackTrace().GetFrames().Any(frame => frame.GetMethod() is { Name: "Route" } method && method.DeclaringType == typeof(PartitionedGatekeeperActor)))
            {
                throw new NastyFault();
            }

            return Hash ?? StringComparer.Ordinal.GetHashCode(Name);
        }

        public override string ToString() => ToStringThrows ? throw new InvalidOperationException($"key {Name} cannot be named") : Name;
    }
}
