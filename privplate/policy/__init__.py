"""Who may ask what: query purposes, the forbidden-purpose screen and quotas."""
