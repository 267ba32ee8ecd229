using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace ActorQueue.Hosting;

/// <summary>
/// Reads <see cref="ActorQueueOptions"/> from configuration strictly: every key must be one ActorQueue knows and every
/// value must parse, or the read fails with an <see cref="ArgumentException"/> whose parameter name is the key's path
/// and whose message gives the value. The configuration binder it replaces dropped a whole limiter or queue whose
/// value did not parse and ignored misspelled keys, so a host started without a limit its configuration asked for.
/// </summary>
/// <remarks>Keys match whatever their case, as the binder's do; an empty value of an optional setting means not set.</remarks>
internal static class ActorQueueConfiguration
{
    private static readonly string[] TopKeys = [nameof(ActorQueueOptions.UseAsDefaultSystem), nameof(ActorQueueOptions.Limiters), nameof(ActorQueueOptions.Queues)];

    private static readonly string[] LimiterKeys = [nameof(LimiterOptions.MaxRunning), nameof(LimiterOptions.MaxQueued)];

    private static readonly string[] QueueKeys =
        [nameof(QueueOptions.MaxSize), nameof(QueueOptions.PutTimeout), nameof(QueueOptions.ConcurrencyLimit), nameof(QueueOptions.Limiter)];

    /// <summary>Sets <paramref name="options"/> from <paramref name="configuration"/> (the <c>ActorQueue</c> section).</summary>
    /// <exception cref="ArgumentException">A key is unknown or a value does not parse; names the key's path and the value.</exception>
    public static void Bind(IConfiguration configuration, ActorQueueOptions options)
    {
        options.ConfigurationPath = (configuration as IConfigurationSection)?.Path ?? string.Empty;
        foreach (var setting in configuration.GetChildren())
        {
            switch (Known(setting, TopKeys, "ActorQueue's settings"))
            {
                case nameof(ActorQueueOptions.UseAsDefaultSystem):
                    options.UseAsDefaultSystem = Flag(setting) ?? options.UseAsDefaultSystem;
                    break;
                case nameof(ActorQueueOptions.Limiters):
                    foreach (var limiter in Children(setting, $"named limiters ({setting.Path}:NAME:…)"))
                    {
                        options.Limiters[limiter.Key] = Limiter(limiter, options.Limiters.GetValueOrDefault(limiter.Key) ?? new LimiterOptions());
                    }

                    break;
                default:
                    foreach (var queue in Children(setting, $"named queues ({setting.Path}:NAME:…)"))
                    {
                        options.Queues[queue.Key] = Queue(queue, options.Queues.GetValueOrDefault(queue.Key) ?? new QueueOptions());
                    }

                    break;
            }
        }
    }

    private static LimiterOptions Limiter(IConfigurationSection section, LimiterOptions limiter)
    {
        foreach (var setting in Children(section, $"the settings of a limiter ({string.Join(", ", LimiterKeys)})"))
        {
            if (Known(setting, LimiterKeys, "a limiter") == nameof(LimiterOptions.MaxRunning))
            {
                limiter.MaxRunning = Whole(setting, 1) ?? throw Refused(setting, "a whole number");
            }
            else
            {
                limiter.MaxQueued = Whole(setting, 0);
            }
        }

        return limiter;
    }

    private static QueueOptions Queue(IConfigurationSection section, QueueOptions queue)
    {
        foreach (var setting in Children(section, $"the settings of a queue ({string.Join(", ", QueueKeys)})"))
        {
            switch (Known(setting, QueueKeys, "a queue"))
            {
                case nameof(QueueOptions.MaxSize):
                    queue.MaxSize = Whole(setting, 1) ?? throw Refused(setting, "a whole number");
                    break;
                case nameof(QueueOptions.PutTimeout):
                    queue.PutTimeout = Duration(setting);
                    break;
                case nameof(QueueOptions.ConcurrencyLimit):
                    queue.ConcurrencyLimit = Whole(setting, 1);
                    break;
                default:
                    queue.Limiter = string.IsNullOrEmpty(Value(setting)) ? null : setting.Value;
                    break;
            }
        }

        return queue;
    }

    /// <summary>
    /// The children of <paramref name="section"/>, which must hold <paramref name="expected"/>: a plain value in its
    /// place is refused, an empty one means none.
    /// </summary>
    private static List<IConfigurationSection> Children(IConfigurationSection section, string expected)
    {
        var children = section.GetChildren().ToList();
        return children.Count == 0 && !string.IsNullOrEmpty(section.Value)
            ? throw new ArgumentException($"{section.Path} must hold {expected}, got the value '{section.Value}'", section.Path)
            : children;
    }

    /// <summary>The setting's name as ActorQueue spells it.</summary>
    /// <exception cref="ArgumentException">It is none of <paramref name="keys"/>.</exception>
    private static string Known(IConfigurationSection setting, string[] keys, string what) =>
        keys.FirstOrDefault(key => string.Equals(key, setting.Key, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"{setting.Path} is not a setting of {what} (known: {string.Join(", ", keys)})", setting.Path);

    /// <summary>The value of a setting that holds one (not a section of its own).</summary>
    private static string? Value(IConfigurationSection setting) =>
        setting.GetChildren().Any()
            ? throw new ArgumentException($"{setting.Path} must be a value, got a section ({string.Join(", ", setting.GetChildren().Select(child => child.Key))})", setting.Path)
            : setting.Value;

    /// <summary>
    /// A whole number, decimal or (as the binder took it) hexadecimal with <c>0x</c>. One that does not parse is refused
    /// naming the setting's range from <paramref name="minimum"/>; one that parses below it is refused by the validation.
    /// </summary>
    private static int? Whole(IConfigurationSection setting, int minimum)
    {
        if (string.IsNullOrEmpty(Value(setting)))
        {
            return null;
        }

        var text = setting.Value!.Trim();
        var parsed = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? int.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var value)
            : int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value);
        return parsed ? value : throw Refused(setting, $"a whole number from {minimum} to {int.MaxValue}");
    }

    /// <summary><c>true</c> or <c>false</c>, whatever the case; <c>null</c> (not set) for an empty value, as every optional setting.</summary>
    private static bool? Flag(IConfigurationSection setting) =>
        string.IsNullOrEmpty(Value(setting)) ? null
        : bool.TryParse(setting.Value, out var value) ? value
        : throw Refused(setting, "true or false");

    /// <summary>
    /// A duration written with hours and minutes at least (<c>hh:mm[:ss[.fff]]</c>, <c>d.hh:mm:ss</c>). A bare number is
    /// refused: <see cref="TimeSpan.TryParse(string, IFormatProvider, out TimeSpan)"/> reads it as days, so "100" meant
    /// for milliseconds waited 100 days (for ever). The range is checked with the other settings.
    /// </summary>
    private static TimeSpan? Duration(IConfigurationSection setting) =>
        string.IsNullOrEmpty(Value(setting)) ? null
        : setting.Value!.Contains(':', StringComparison.Ordinal) && TimeSpan.TryParse(setting.Value, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw Refused(setting, "a duration such as 00:00:05 (hh:mm:ss; 00:00:00.100 for 100 ms, not a bare number)");

    private static ArgumentException Refused(IConfigurationSection setting, string expected) =>
        new($"{setting.Path} must be {expected}, got '{setting.Value}'", setting.Path);
}
