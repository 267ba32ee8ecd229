using ActorQueue.Runtime;
using Microsoft.Extensions.Options;

namespace ActorQueue.Hosting;

/// <summary>
/// Checks <see cref="ActorQueueOptions"/>: each limiter's and queue's name neither blank, padded with white space nor
/// of ASCII digits only (what a JSON array under <c>Limiters</c> or <c>Queues</c> becomes),
/// its values in range, a queue's limiter configured and not paired with a concurrency limit of its own. <c>AddActorQueue</c> registers it with <c>ValidateOnStart</c>, so a
/// bad setting fails the host before any hosted service starts (the actor system, the application's services), as
/// Microsoft.Extensions.Options' validation does; the registry checks again when it is made outside a host.
/// </summary>
/// <remarks>
/// A bad setting is thrown, not returned as a failed <see cref="ValidateOptionsResult"/>: the start fails with the
/// <see cref="ArgumentException"/> (an <see cref="ArgumentOutOfRangeException"/> for a value out of range) whose
/// <c>ParamName</c> is the configuration key and whose message names the key and the value, as it did when only the registry checked, rather than an <see cref="OptionsValidationException"/>.
/// </remarks>
internal sealed class ActorQueueOptionsValidation : IValidateOptions<ActorQueueOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, ActorQueueOptions options)
    {
        Check(options);
        return ValidateOptionsResult.Success;
    }

    /// <summary>Checks every limiter and queue of <paramref name="options"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range (a negative <see cref="QueueOptions.PutTimeout"/> too); the message names its configuration key and value.</exception>
    /// <exception cref="ArgumentException">A limiter's or queue's name is blank, begins or ends with white space (<c>ParamName</c> is its key, <c>ActorQueue:Queues:fetch </c>) or is digits only (<c>ActorQueue:Limiters:0</c>, what a JSON array under <c>Limiters</c> becomes); or a queue names a limiter that is not configured, or sets both a limiter and a concurrency limit (<c>ParamName</c> is the queue's <c>Limiter</c> key, and the message names the keys).</exception>
    public static void Check(ActorQueueOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);

        // Names first: a JSON array under Limiters is the mistake to report, not a queue's limiter it failed to define.
        foreach (var name in options.Queues.Keys)
        {
            CheckName(options, "Queues", name, "queue");
        }

        foreach (var name in options.Limiters.Keys)
        {
            CheckName(options, "Limiters", name, "limiter");
        }

        foreach (var (name, queue) in options.Queues)
        {
            CheckQueue(options, name, queue);
        }

        foreach (var (name, limiter) in options.Limiters)
        {
            AtLeast(options, limiter.MaxRunning, 1, "Limiters", name, nameof(LimiterOptions.MaxRunning));
            AtLeast(options, limiter.MaxQueued, 0, "Limiters", name, nameof(LimiterOptions.MaxQueued));
        }
    }

    /// <summary>The configuration path of a section of the options (<c>ActorQueue:Limiters</c>, or the path they were read from).</summary>
    public static string Section(ActorQueueOptions options, string section) =>
        options.ConfigurationPath is { Length: > 0 } path ? $"{path}:{section}" : section;

    private static string Key(ActorQueueOptions options, string section, string name, string property) => $"{Section(options, section)}:{name}:{property}";

    /// <summary>
    /// Refuses a blank name (an environment variable <c>ActorQueue__Queues____MaxSize</c> missing its name, a JSON
    /// <c>"": {…}</c>) and one that begins or ends with white space (<c>"fetch "</c>, which <c>GetQueue("fetch")</c>
    /// would never find), naming its configuration key. Refuses too a name of digits only (<c>"0"</c>, <c>"7"</c>): it is
    /// what configuration makes of a JSON array, <c>"Limiters": [ { "MaxRunning": 4 } ]</c> being read as a limiter
    /// named <c>"0"</c> that no <c>GetLimiter("llm")</c> finds.
    /// </summary>
    /// <remarks>
    /// Each name is checked, not the section as a whole (refusing only a section whose names are all array indices):
    /// configuration layers its sources, so an array in one (an environment's appsettings file) can sit beside names
    /// from another and still make limiters "0", "1"; and a rule on the name alone is the same whether the options came
    /// from configuration or code, and says what to do (name it). The cost, a number used as a name (a tenant's id),
    /// is met by a word around it (<c>tenant-42</c>); a name that merely contains digits (<c>llm2</c>, <c>0x1</c>) passes.
    /// </remarks>
    private static void CheckName(ActorQueueOptions options, string section, string name, string what)
    {
        var key = $"{Section(options, section)}:{name}";
        if (string.IsNullOrWhiteSpace(name) || char.IsWhiteSpace(name[0]) || char.IsWhiteSpace(name[^1]))
        {
            throw new ArgumentException(
                $"'{key}': a {what}'s name must not be blank or begin or end with white space, got '{name}' (the name is the key under {Section(options, section)})", key);
        }

        if (name.All(char.IsAsciiDigit))
        {
            var example = what == "limiter" ? """{ "llm": { "MaxRunning": 4 } }""" : """{ "fetch": { "MaxSize": 100 } }""";
            throw new ArgumentException(
                $"'{key}': a {what}'s name must not be digits only, got '{name}' (a JSON array under {Section(options, section)} is read as names \"0\", \"1\", …): "
                + $"{Section(options, section)} is an object keyed by name, e.g. \"{section}\": {example}; a number as a name needs a word around it (tenant-42)", key);
        }
    }

    /// <summary>Refuses a set value below <paramref name="minimum"/>, naming its configuration key and the value; <c>null</c> (not set) passes.</summary>
    private static void AtLeast(ActorQueueOptions options, int? value, int minimum, string section, string name, string property)
    {
        if (value < minimum)
        {
            var key = Key(options, section, name, property);
            throw new ArgumentOutOfRangeException(key, value, $"{key} must be >= {minimum}, got {value}");
        }
    }

    private static void CheckQueue(ActorQueueOptions options, string name, QueueOptions queue)
    {
        AtLeast(options, queue.MaxSize, 1, "Queues", name, nameof(QueueOptions.MaxSize));
        AtLeast(options, queue.ConcurrencyLimit, 1, "Queues", name, nameof(QueueOptions.ConcurrencyLimit));
        if (queue.PutTimeout is { } putTimeout && putTimeout != Timeout.InfiniteTimeSpan && (putTimeout < TimeSpan.Zero || putTimeout > Timeouts.LongestFinite))
        {
            // Checked here, not first at GetQueue under the queue's parameter name; a value past what timers wait is
            // refused rather than read as infinite.
            var key = Key(options, "Queues", name, nameof(QueueOptions.PutTimeout));
            throw new ArgumentOutOfRangeException(key, putTimeout,
                $"{key} must be from 0 to {Timeouts.LongestFinite} or infinite ({Timeout.InfiniteTimeSpan}), got {putTimeout}");
        }

        if (queue.Limiter is { } limiter)
        {
            // Bad configuration is bad input: an ArgumentException naming the key, as every other refused setting.
            var key = Key(options, "Queues", name, nameof(QueueOptions.Limiter));
            if (queue.ConcurrencyLimit is not null)
            {
                throw new ArgumentException(
                    $"{key} ('{limiter}') and {Key(options, "Queues", name, nameof(QueueOptions.ConcurrencyLimit))} ({queue.ConcurrencyLimit}) are both set; set one: a queue either shares a named limiter or has a concurrency limit of its own", key);
            }

            if (!options.Limiters.ContainsKey(limiter))
            {
                throw new ArgumentException($"{key} names '{limiter}', which is not in {Section(options, "Limiters")}", key);
            }
        }
    }
}
