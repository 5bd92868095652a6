/** The nouns of the operator commands (`weldr servers …`); main.ts dispatches on them without loading the commands. */
export const CTL_NOUNS = ['servers', 'cluster', 'member', 'stats', 'settings', 'snapshot', 'drill'] as const;
