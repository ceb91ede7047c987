export { MODULE_NAME, MODULE_VERSION } from './version';
export { StreamTableModel, StreamTableView } from './table';
export { StreamPlotModel, StreamPlotView } from './plot';
export { FlowGraphModel, FlowGraphView } from './graph';
export { JobPanelModel, JobPanelView } from './panel';
export { JobTimelineModel, JobTimelineView } from './timeline';
