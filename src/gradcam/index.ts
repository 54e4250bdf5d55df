/**
 * Grad-CAM rendering: colormaps, overlays, triptychs, galleries and
 * per-class mean maps. The maps themselves are computed natively; everything
 * here is presentation (sharp for scaling, compositing, text and PNG).
 */
export {
  COLORMAP_NAMES,
  DEFAULT_COLORMAP,
  LUT_SIZE,
  applyColormap,
  assertColormapName,
  colormapColor,
  colormapLUT,
  isColormapName,
} from './colormap';
export type { ColormapName } from './colormap';

export { chwToHwc, mapMax, normalizeMap, resizeBilinear } from './resample';

export {
  CAPTION_FONT_SIZE,
  CAPTION_GAP,
  CAPTION_LINE_HEIGHT,
  FRAME_WIDTH,
  ITEM_PADDING,
  PANEL_GAP,
  WRONG_COLOR,
  heatmapRGB,
  itemLayout,
  normalizedValues,
  samplePeak,
  renderOverlay,
  renderTriptych,
  upscaleImage,
} from './render';
export type { GradcamSample, MapScale, ItemLayout, ItemLayoutOptions, ItemMode, OverlayOptions, Rect, RenderStyle, TriptychOptions } from './render';

export { CELL_GAP, GALLERY_GROUPS, GALLERY_MARGIN, galleryLayout, renderGallery, selectGalleryItems } from './gallery';
export type { GalleryGroup, GalleryItem, GalleryLayout, GalleryOptions, GallerySection, GallerySelection, SelectOptions } from './gallery';

export { classMeanMaps, classMeansLayout, classMeansToJSON, formatValue, renderClassMeans } from './classmeans';
export type { ClassMeanMaps, ClassMeansJSON, ClassMeansLayout, ClassMeansRenderOptions } from './classmeans';

export { TEXT_RENDERER_ENV, detectTextRenderer } from './text';
export type { TextRendererChoice, TextRendererInfo, TextRendererKind } from './text';

export { LABEL_NAMES } from './validate';
export type { Label } from './validate';

export { assertLayer, datasetSummaryJSON, explainDataset, explainImage, explainImages, explanationAt, renderExplained } from './explain';
export type {
  ClassMeanStats,
  DatasetExplanation,
  DatasetSummaryJSON,
  DatasetInput,
  ExplainDatasetOptions,
  ExplainedImage,
  ExplainedPrediction,
  ExplainMethod,
  ExplainOptions,
  ExplainPngOptions,
  ExplainTarget,
  Explanation,
  ImageExplanation,
} from './explain';
export { camFromLayer, scoreCam, upsampleMaps, CAM_METHOD_NAMES, GRADIENT_CAM_METHODS } from './cam-methods';
export type { GradientCamMethod, LayerTensors } from './cam-methods';
export { centrePriorMaps, faithfulness, imputeNoisyLinear, randomMaps, ROAD_PERCENTILES } from './faithfulness';
export type { FaithfulnessScores } from './faithfulness';
export { camMaps, centreShare, compareMethods, formatFaithfulnessTable, CAM_METHODS } from './faithfulness-run';
export type { CamMethod, FaithfulnessReport, MethodRow } from './faithfulness-run';
