// The 26 items of GB/T 42195-2022 as the server checks them (market/assessment.py ITEMS):
// [code, dimension, highest score]. The names are in i18n.js under "item.<code>".
// The client only collects scores; the server computes the grade.

export const DIMENSIONS = ["self_care", "basic_mobility", "mental_status", "perception_social"];

export const ITEMS = [
  ["eating", "self_care", 4],
  ["grooming", "self_care", 4],
  ["bathing", "self_care", 4],
  ["dressing_upper", "self_care", 4],
  ["dressing_lower", "self_care", 4],
  ["urine_control", "self_care", 4],
  ["bowel_control", "self_care", 4],
  ["toileting", "self_care", 4],
  ["bed_mobility", "basic_mobility", 4],
  ["bed_chair_transfer", "basic_mobility", 4],
  ["level_walking", "basic_mobility", 4],
  ["stairs", "basic_mobility", 3],
  ["time_orientation", "mental_status", 4],
  ["place_orientation", "mental_status", 4],
  ["person_orientation", "mental_status", 4],
  ["memory", "mental_status", 4],
  ["comprehension", "mental_status", 4],
  ["expression", "mental_status", 4],
  ["aggression", "mental_status", 1],
  ["depression", "mental_status", 1],
  ["consciousness", "mental_status", 2],
  ["vision", "perception_social", 2],
  ["hearing", "perception_social", 2],
  ["daily_affairs", "perception_social", 4],
  ["transport", "perception_social", 3],
  ["social_contact", "perception_social", 4],
];
