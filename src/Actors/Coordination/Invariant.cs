using System.Diagnostics;

namespace ActorQueue.Coordination;

/// <summary>Invariants written as code: checked in debug builds, compiled away (arguments included) in release builds.</summary>
internal static class Invariant
{
    /// <summary>Throws when <paramref name="holds"/> is false, so a broken invariant fails the test that broke it.</summary>
    /// <param name="holds">The invariant, evaluated.</param>
    /// <param name="what">What it says, for the message.</param>
    [Conditional("DEBUG")]
    public static void That(bool holds, string what)
    {
        if (!holds)
        {
            throw new InvalidOperationException($"Invariant broken: {what}.");
        }
    }
}
