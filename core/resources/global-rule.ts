import { Type, type Static } from 'typebox'
import { Meta, Plugins, closed } from './defs.js'

/** A global rule, as APISIX 3.x's `_M.global_rule`: plugins that apply to every route. */
export const GlobalRuleSchema = Type.Object(
  {
    ...Meta,
    plugins: Plugins,
  },
  closed,
)

/** A validated global rule. */
export type GlobalRule = Static<typeof GlobalRuleSchema>
